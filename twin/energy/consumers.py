"""What the households draw each energy tick: base load, heating/cooling, EV charging, PV.

- base load: the simulated day's daily energies and appliance events per household
  (:func:`twin.energy.loads.draw_base_load`, BDEW H25 shape), turned into kW one hour at a
  time as the ticks reach it (:class:`twin.energy.loads.BaseLoadBlocks`: about 375 bytes per
  household at one-minute ticks, whatever the window; the numbers of ``base_load_kw``);
- heating and cooling: one 1R1C dwelling per household (:mod:`twin.energy.thermal`), its floor
  area from the household's building where it lives in one (footprint x levels / dwellings),
  otherwise ``DEFAULT_FLOOR_M2``; driven by the day's outdoor temperature and clear-sky solar
  gains, after a settling day so the run starts from a realistic indoor state;
- rooftop PV on ``pv_share`` of the households (:mod:`twin.energy.solar`, clear sky);
- EVs (:mod:`twin.energy.ev`): the first car of an EV household. It starts the run at home,
  unplugged, its state of charge drawn in ``ev_start_soc``. It unplugs when it leaves home
  and gets back at the times the traffic engine delivers for the legs it simulates (so
  congestion delays charging), and at the plan's times (free-flow) for legs outside the
  traffic window or when traffic is off; the drive's distance comes off the battery; the next
  planned departure from home is its charging deadline. Whether, when and to what target it
  then plugs in is its household's decision (:meth:`~twin.population.agent.Household.plug_in`,
  asked through the agents handed over by :meth:`Consumers.attach_households`); the default,
  and the rule without agents, is to plug in on arrival wanting ``ev_target_soc`` (the
  session model of the uncontrolled baseline, as in ACN-Sim). A new session starts at the
  set-point ``session_p_set_kw`` (NaN, full power, unless a charging policy set it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from twin.energy.config import EnergyConfig
from twin.energy.ev import EVFleet
from twin.energy.loads import BaseLoadBlocks, draw_base_load
from twin.energy.solar import clear_sky_ghi_w_m2, pv_p_kw, sun_vector
from twin.energy.thermal import Dwellings, draw_dwellings, heat_gains_w_per_m2
from twin.energy.weather import outdoor_temp_c
from twin.population.agent import Household, PlugIn
from twin.population.destinations import HOME
from twin.population.plans import Legs
from twin.population.synthesis import PopulationData
from twin.rng import stream
from twin.traffic.state import ARRIVED, RUNNING, UNROUTABLE

DAY_S = 86400.0
SETTLE_STEP_S = 300.0  # step of the settling day before the start (the kernel is exact)
BASE_BLOCK_MIN = 60  # minutes of base load generated at a time (BaseLoadBlocks)
DEFAULT_FLOOR_M2 = 150.0  # heated floor area of a home placed along a street (thermal.py)
MIN_FLOOR_M2, MAX_FLOOR_M2 = 40.0, 400.0  # clip of building-derived floor areas


def day_of_year(month: int, day: int) -> int:
    """Day of the year (non-leap) of a month and day."""
    starts = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return int(starts[month - 1] + min(day, starts[month] - starts[month - 1]))


@dataclass(eq=False)
class EVLegs:
    """The legs of every EV's car that leave or reach home, as event sources."""

    leg: np.ndarray  # int64 index into the population's legs
    ev: np.ndarray  # int64 EV index
    sim: np.ndarray  # int64 traffic fleet index, -1 when the leg is not simulated
    leaves_home: np.ndarray  # bool
    reaches_home: np.ndarray  # bool
    plan_depart_s: np.ndarray  # float64
    plan_arrive_s: np.ndarray  # float64, free-flow estimate
    plan_dist_m: np.ndarray  # float64, free-flow estimate
    outside_m: np.ndarray  # float64, driven beyond the map's edge before and after the leg
    tour_start: np.ndarray  # int64, row (here) of the first leg of the leg's tour
    departed: np.ndarray  # bool, handled
    arrived: np.ndarray  # bool, handled


class Consumers:
    """Household-side state and the kW each household draws per tick."""

    def __init__(
        self,
        data: PopulationData,
        legs: Legs,
        cfg: EnergyConfig,
        seed: int,
        *,
        start_s: float,
        end_s: float,
        lon_lat: tuple[float, float],
    ) -> None:
        hh = data.households
        n = len(hh)
        self.cfg = cfg
        self.tick_s = float(cfg.tick)
        self.start_s = start_s
        self.lon, self.lat = lon_lat
        self.utc_offset_h = (
            float(round(self.lon / 15.0)) if cfg.utc_offset_h is None else cfg.utc_offset_h
        )
        self.doy = day_of_year(cfg.month, cfg.day)
        self.temp_range_c = cfg.temperature_range_c
        # base load: the day's events, generated block by block as the ticks reach them
        # (the day profile repeats past midnight)
        self._k0 = int(np.floor(start_s / self.tick_s))
        self._n_ticks = max(int(np.ceil(end_s / self.tick_s)) - self._k0, 1)
        self.base = BaseLoadBlocks(
            draw_base_load(n, hh.persons, stream(seed, "energy.base-load"), month=cfg.month),
            step_s=int(self.tick_s), block_min=BASE_BLOCK_MIN,
        )  # fmt: skip
        # dwellings, settled over the day before the start
        self.dwellings: Dwellings = draw_dwellings(
            n, stream(seed, "energy.dwellings"), floor_area_m2=floor_area_m2(data)
        )
        settle_s = max(self.tick_s, SETTLE_STEP_S)
        for t in np.arange(start_s - DAY_S, start_s, settle_s):
            self.dwellings.step(self.t_out_c(t), self.gains_w(t), settle_s)
        # PV
        has_pv = stream(seed, "energy.pv").random(n) < cfg.pv_share
        self.pv_kwp = np.where(has_pv, cfg.pv_kwp, 0.0)
        self._pv_idx = np.flatnonzero(has_pv)
        # EVs: the first car of each EV household; at the start at home, unplugged, with a
        # state of charge drawn in ev_start_soc: each plugs in when it next gets home
        self.ev_household = np.flatnonzero(hh.has_ev)
        battery = cfg.ev_battery_kwh
        soc = stream(seed, "energy.ev-soc").uniform(*cfg.ev_start_soc, len(self.ev_household))
        self.evs = EVFleet.create(
            len(self.ev_household),
            battery_kwh=battery,
            soc_kwh=soc * battery,
            target_soc=cfg.ev_target_soc,
            max_p_kw=cfg.ev_charger_kw,
            kwh_per_km=cfg.ev_kwh_per_km,
            plugged=False,
        )
        self.ev_legs = ev_legs(data, legs, self.ev_household)
        self._home_departures = self._departures_by_ev()
        self.evs.departure_s[:] = self.next_departure_s(np.arange(len(self.evs)), start_s)
        # legs before the start: mark them handled (a car whose last one left home is away)
        for i in np.argsort(self.ev_legs.plan_depart_s, kind="stable"):
            if self.ev_legs.plan_depart_s[i] >= start_s:
                break
            if self.ev_legs.leaves_home[i]:
                self.ev_legs.departed[i] = True
            if self.ev_legs.reaches_home[i] and self.ev_legs.plan_arrive_s[i] < start_s:
                self.ev_legs.arrived[i] = True
        self.ev_events = 0
        self.ev_sessions = 0  # plug-ins
        self.ev_declined = 0  # arrivals home whose household left the EV unplugged
        #: set-point a new charging session starts with, kW (NaN: the charger's full power,
        #: the uncontrolled baseline); a charging policy sets it (twin.control.charging)
        self.session_p_set_kw = np.nan
        self.households: Mapping[int, Household] | None = None
        # the last tick's draw per household, kW (what a charging policy observes)
        self.last_net_kw = np.zeros(n)
        self.last_ev_kw = np.zeros(n)

    # -- weather and sun ---------------------------------------------------------------------

    def t_out_c(self, t_s: float) -> float:
        lo, hi = self.temp_range_c
        return float(outdoor_temp_c(np.array([t_s % DAY_S]), lo, hi)[0])

    def _ghi(self, t_s: float) -> float:
        _, _, up = sun_vector(
            t_s % DAY_S, day_of_year=self.doy, lat_deg=self.lat, lon_deg=self.lon,
            utc_offset_h=self.utc_offset_h,
        )  # fmt: skip
        return float(clear_sky_ghi_w_m2(up))

    def gains_w(self, t_s: float) -> np.ndarray:
        return heat_gains_w_per_m2(self._ghi(t_s)) * self.dwellings.floor_area_m2

    # -- EV events ---------------------------------------------------------------------------

    def _departures_by_ev(self) -> list[np.ndarray]:
        el = self.ev_legs
        out = []
        for e in range(len(self.evs)):
            mask = (el.ev == e) & el.leaves_home
            out.append(np.sort(el.plan_depart_s[mask]))
        return out

    def next_departure_s(self, evs: np.ndarray, after_s: float | np.ndarray) -> np.ndarray:
        """The next planned departure from home of each EV after ``after_s`` (inf: none)."""
        after = np.broadcast_to(np.asarray(after_s, dtype=np.float64), (len(evs),))
        out = np.full(len(evs), np.inf)
        for j, e in enumerate(evs):
            d = self._home_departures[e]
            k = np.searchsorted(d, after[j], side="right")
            if k < len(d):
                out[j] = d[k]
        return out

    def attach_households(self, households: Mapping[int, Household]) -> None:
        """Ask the household agents (by household index) whether their EVs plug in."""
        self.households = households

    def attach_traffic(self, trip_leg: np.ndarray) -> None:
        """Take the EV legs' times from the traffic engine: ``trip_leg[k]`` is the population
        leg of the traffic engine's vehicle ``k``."""
        size = max(trip_leg.max(initial=-1), self.ev_legs.leg.max(initial=-1)) + 1
        fleet_of_leg = np.full(int(size), -1)
        fleet_of_leg[trip_leg] = np.arange(len(trip_leg))
        self.ev_legs.sim = fleet_of_leg[self.ev_legs.leg]

    def ev_updates(self, t_s: float, fleet: object | None) -> None:
        """Apply the EV departures and arrivals that happened before ``t_s``, in time order."""
        el = self.ev_legs
        dep = el.plan_depart_s.copy()
        arr = el.plan_arrive_s.copy()
        dist = el.plan_dist_m.copy()
        sim = el.sim >= 0
        if fleet is not None and sim.any():
            v = el.sim[sim]
            state = fleet.state[v]
            dep[sim] = np.where(state >= RUNNING, fleet.depart_s[v], np.inf)
            arr[sim] = np.where(state == ARRIVED, fleet.arrive_s[v], np.inf)
            dist[sim] = fleet.dist_m[v]
            never = state == UNROUTABLE  # not driven: fall back to the plan
            dep[np.flatnonzero(sim)[never]] = el.plan_depart_s[sim][never]
            arr[np.flatnonzero(sim)[never]] = el.plan_arrive_s[sim][never]
        leave = np.flatnonzero(el.leaves_home & ~el.departed & (dep < t_s))
        come = np.flatnonzero(el.reaches_home & ~el.arrived & (arr < t_s))
        if len(leave) == 0 and len(come) == 0:
            return
        times = np.concatenate([dep[leave], arr[come]])
        kinds = np.concatenate([np.zeros(len(leave), bool), np.ones(len(come), bool)])
        legs = np.concatenate([leave, come])
        driven_m = dist + el.outside_m
        for j in np.lexsort((kinds, times)):
            i, e = legs[j], el.ev[legs[j]]
            if kinds[j]:  # the whole tour comes off the battery: every leg since leaving home
                tour_m = float(driven_m[el.tour_start[i] : i + 1].sum())
                self._arrive_home(int(e), float(times[j]), tour_m)
                el.arrived[i] = True
            else:
                if self.evs.plugged[e]:
                    self.evs.depart(np.array([e]))
                el.departed[i] = True
            self.ev_events += 1

    def _arrive_home(self, e: int, t_s: float, distance_m: float) -> None:
        """EV ``e`` gets home after ``distance_m`` (its whole tour): the drive comes off its
        battery, its household decides."""
        evs, one = self.evs, np.array([e])
        evs.arrive(
            one, t_s, distance_m, next_departure_s=self.next_departure_s(one, t_s), plug=False
        )
        hh = int(self.ev_household[e])
        target_soc = self.cfg.ev_target_soc
        agent = None if self.households is None else self.households.get(hh)
        if agent is None:
            plug: PlugIn | None = PlugIn(at_s=t_s, target_soc=target_soc)
        else:
            plug = agent.plug_in(
                t_s, 0, float(evs.soc_kwh[e]), float(evs.battery_kwh[e]), target_soc
            )
        if plug is None:
            self.ev_declined += 1
            return
        if not (np.isfinite(plug.at_s) and plug.at_s >= t_s and 0 < plug.target_soc <= 1):
            raise ValueError(
                f"{type(agent).__name__}.plug_in of household {hh}: expected at_s >= the "
                f"arrival ({t_s:g} s) and 0 < target_soc <= 1, got {plug}"
            )
        evs.plug_in(
            one, plug.at_s, target_kwh=plug.target_soc * evs.battery_kwh[e],
            p_set_kw=self.session_p_set_kw,
        )  # fmt: skip
        self.ev_sessions += 1

    # -- one tick ------------------------------------------------------------------------------

    def draw_kw(self, t_s: float) -> tuple[np.ndarray, ...]:
        """Mean kW over the tick [t_s - tick, t_s) per household: (base, hvac, ev, pv)."""
        t0 = t_s - self.tick_s
        k = min(max(round(t0 / self.tick_s) - self._k0, 0), self._n_ticks - 1)
        base = self.base.column((self._k0 + k) % self.base.n_steps).astype(np.float64)
        mid = t0 + self.tick_s / 2
        hvac = self.dwellings.step(self.t_out_c(mid), self.gains_w(mid), self.tick_s)
        ev_kw = np.zeros(len(base))
        if len(self.evs):
            ev_kw[self.ev_household] = self.evs.charge(t0, self.tick_s)
        pv = np.zeros(len(base))
        if len(self._pv_idx):
            pv[self._pv_idx] = pv_p_kw(
                np.array([mid % DAY_S]), self.pv_kwp[self._pv_idx], day_of_year=self.doy,
                lat_deg=self.lat, lon_deg=self.lon, utc_offset_h=self.utc_offset_h,
            ).reshape(-1)  # fmt: skip
        self.last_net_kw = base + hvac + ev_kw - pv
        self.last_ev_kw = ev_kw
        return base, hvac, ev_kw, pv


def floor_area_m2(data: PopulationData) -> np.ndarray:
    """Floor area of each household's dwelling: its building's floor area per dwelling, or
    DEFAULT_FLOOR_M2 for homes along streets."""
    hh = data.households
    area = np.full(len(hh), DEFAULT_FLOOR_M2)
    b = hh.home_building
    inb = b >= 0
    if inb.any():
        f = data.features
        per_bldg = np.bincount(b[inb], minlength=len(f.bldg_x_m))
        floor = f.bldg_floor_m2[b[inb]] / np.maximum(per_bldg[b[inb]], 1)
        area[inb] = np.clip(floor, MIN_FLOOR_M2, MAX_FLOOR_M2)
    return area


def ev_legs(data: PopulationData, legs: Legs, ev_household: np.ndarray) -> EVLegs:
    """Legs of each EV's car (car 0 of an EV household) that leave or reach home."""
    ev_of_hh = np.full(len(data.households), -1, dtype=np.int64)
    ev_of_hh[ev_household] = np.arange(len(ev_household))
    own = legs.household >= 0
    hh = np.where(own, legs.household, 0)
    mine = own & (legs.car == 0) & (ev_of_hh[hh] >= 0)
    idx = np.flatnonzero(mine)
    # a tour's first leg leaves home (tours_to_legs writes each tour's legs together)
    first = np.ones(len(legs), dtype=bool)
    first[1:] = legs.tour[1:] != legs.tour[:-1]
    leaves = first[idx]
    reaches = legs.purpose[idx] == HOME
    o, d = legs.origin_node[idx], legs.dest_node[idx]
    t_min = data.gravity.time_min(o, d)
    # a tour's legs are consecutive (one car drives them): each row's tour starts at the last
    # row, at or before it, whose tour differs from the row before
    new_tour = np.ones(len(idx), dtype=bool)
    new_tour[1:] = legs.tour[idx][1:] != legs.tour[idx][:-1]
    tour_start = np.maximum.accumulate(np.where(new_tour, np.arange(len(idx)), 0))
    dist_km = data.zones.dist_km[data.zones.node_zone[o], data.zones.node_zone[d]]
    n = len(idx)
    return EVLegs(
        leg=idx.astype(np.int64),
        ev=ev_of_hh[legs.household[idx]],
        sim=np.full(n, -1, dtype=np.int64),
        leaves_home=leaves,
        reaches_home=reaches,
        plan_depart_s=legs.depart_s[idx],
        plan_arrive_s=legs.depart_s[idx] + 60.0 * t_min,
        plan_dist_m=1000.0 * dist_km,
        outside_m=legs.outside_pre_m[idx] + legs.outside_post_m[idx],
        tour_start=tour_start.astype(np.int64),
        departed=np.zeros(n, dtype=bool),
        arrived=np.zeros(n, dtype=bool),
    )
