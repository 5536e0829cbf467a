"""EV charging at home: arrivals drain the battery by the distance driven, plugged EVs charge.

Struct-of-arrays state, one row per EV (:class:`EVFleet`). Events come from the traffic side:
:meth:`EVFleet.arrive` (the trip's distance comes off the battery; the EV plugs in, at once
or as its household decides: :meth:`EVFleet.plug_in`) and
:meth:`EVFleet.depart` (it unplugs; what it lacks of its target is recorded as unmet).
:func:`charge_step` is the Numba kernel the energy tick calls for each interval
``[t_s, t_s + dt_s)``: each plugged EV charges from ``max(t_s, plug_s)`` to ``min(t_s + dt_s,
departure_s)`` at its power limit until its target is reached; the power limit is the
charger's ``max_p_kw`` or, where a policy set ``p_set_kw`` (not NaN), that set-point clipped
to ``[0, max_p_kw]``. Call it at the start of the interval (a policy decides the coming
interval) or at its end after the interval's events: an arrival mid-interval then charges for
the rest of it. Powers are on the grid side; the battery gains ``efficiency`` times the grid
energy, so ``soc gained = grid energy * efficiency`` holds exactly (constant power, no
taper near full charge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)

#: kWh, usable battery (US BEVs of the early 2020s: Chevrolet Bolt 65, Tesla Model 3 57-75,
#: Nissan Leaf 40-60; our default 60)
BATTERY_KWH = 60.0
#: kW, home Level 2 charger: 240 V x 30 A continuous on a 40 A circuit (SAE J1772 Level 2)
MAX_P_KW = 7.2
#: grid-to-battery efficiency of AC Level 2 charging (85-95 % measured, e.g.
#: Apostolaki-Iosifidou, Codani & Kempton, Energy 127, 2017)
EFFICIENCY = 0.9
#: kWh per km from the battery: US EPA ratings of current BEVs are about 25-35 kWh/100 mi at
#: the wall (0.16-0.22 kWh/km); times the charging efficiency about 0.15-0.2 from the battery
KWH_PER_KM = 0.18
#: target state of charge by departure, share of the battery (daily charging to 80-90 % is the
#: usual manufacturers' advice)
TARGET_SOC = 0.9


@njit(cache=True)
def charge_step(
    t_s,
    dt_s,
    plugged,
    plug_s,
    departure_s,
    soc_kwh,
    target_kwh,
    max_p_kw,
    p_set_kw,
    efficiency,
    energy_kwh,
    p_kw,
):
    """Charge every plugged EV over ``[t_s, t_s + dt_s)``; ``p_kw`` gets its mean grid power.

    Updates ``soc_kwh`` and the grid-energy accumulator ``energy_kwh`` in place.
    """
    end_s = t_s + dt_s
    for i in range(soc_kwh.shape[0]):
        p_kw[i] = 0.0
        if not plugged[i]:
            continue
        window_h = (min(end_s, departure_s[i]) - max(t_s, plug_s[i])) / 3600.0
        need_kwh = target_kwh[i] - soc_kwh[i]
        if window_h <= 0.0 or need_kwh <= 0.0:
            continue
        p_max = max_p_kw[i]
        if not np.isnan(p_set_kw[i]):
            p_max = min(max(p_set_kw[i], 0.0), p_max)
        grid_kwh = min(p_max * window_h, need_kwh / efficiency[i])
        soc_kwh[i] += grid_kwh * efficiency[i]
        energy_kwh[i] += grid_kwh
        p_kw[i] = grid_kwh * 3600.0 / dt_s


@dataclass(eq=False)
class EVFleet:
    """Battery, charger and session state of each EV (float64 unless noted)."""

    battery_kwh: np.ndarray
    soc_kwh: np.ndarray
    target_kwh: np.ndarray  # wanted by departure, <= battery_kwh
    max_p_kw: np.ndarray  # charger limit, grid side
    efficiency: np.ndarray  # grid to battery
    kwh_per_km: np.ndarray  # from the battery
    departure_s: np.ndarray  # next planned departure (inf: none); charging stops there
    plugged: np.ndarray  # bool
    plug_s: np.ndarray  # when it plugged in
    p_set_kw: np.ndarray  # policy set-point; NaN = uncontrolled (full power)
    energy_kwh: np.ndarray  # grid energy drawn so far
    unmet_drive_kwh: np.ndarray  # energy a trip needed beyond an empty battery, summed
    unmet_departure_kwh: np.ndarray  # target minus state of charge at departures, summed

    def __len__(self) -> int:
        return len(self.soc_kwh)

    @classmethod
    def create(
        cls,
        n: int,
        *,
        battery_kwh: np.ndarray | float = BATTERY_KWH,
        soc_kwh: np.ndarray | float | None = None,
        target_soc: np.ndarray | float = TARGET_SOC,
        max_p_kw: np.ndarray | float = MAX_P_KW,
        efficiency: np.ndarray | float = EFFICIENCY,
        kwh_per_km: np.ndarray | float = KWH_PER_KM,
        plugged: np.ndarray | bool = False,
        departure_s: np.ndarray | float = np.inf,
    ) -> EVFleet:
        """``n`` EVs from scalars or per-EV arrays; ``soc_kwh`` defaults to the target."""

        def col(value: np.ndarray | float, dtype: type = np.float64) -> np.ndarray:
            return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

        battery = col(battery_kwh)
        target = col(target_soc) * battery
        eff = col(efficiency)
        if np.any(battery <= 0) or np.any(target > battery) or np.any((eff <= 0) | (eff > 1)):
            raise ValueError("need battery_kwh > 0, target_soc <= 1 and 0 < efficiency <= 1")
        return cls(
            battery_kwh=battery,
            soc_kwh=target.copy() if soc_kwh is None else col(soc_kwh),
            target_kwh=target,
            max_p_kw=col(max_p_kw),
            efficiency=eff,
            kwh_per_km=col(kwh_per_km),
            departure_s=col(departure_s),
            plugged=col(plugged, np.bool_),
            plug_s=np.full(n, -np.inf),
            p_set_kw=np.full(n, np.nan),
            energy_kwh=np.zeros(n),
            unmet_drive_kwh=np.zeros(n),
            unmet_departure_kwh=np.zeros(n),
        )

    def arrive(
        self,
        ev_idx: np.ndarray,
        t_s: np.ndarray | float,
        distance_m: np.ndarray | float,
        *,
        next_departure_s: np.ndarray | float | None = None,
        plug: bool = True,
    ) -> None:
        """EVs ``ev_idx`` (distinct) arrive home at ``t_s`` after driving ``distance_m``.

        The drive's energy comes off the battery; what an empty battery could not give is
        added to ``unmet_drive_kwh``. ``next_departure_s``, if given, is its next planned
        departure. With ``plug`` the EV plugs in at ``t_s`` (:meth:`plug_in`); without, the
        caller decides (the household's plug-in decision).
        """
        idx = np.asarray(ev_idx, dtype=np.intp)
        used_kwh = np.asarray(distance_m, dtype=np.float64) / 1000.0 * self.kwh_per_km[idx]
        soc = self.soc_kwh[idx] - used_kwh
        self.unmet_drive_kwh[idx] += np.maximum(-soc, 0.0)
        self.soc_kwh[idx] = np.maximum(soc, 0.0)
        if next_departure_s is not None:
            self.departure_s[idx] = next_departure_s
        if plug:
            self.plug_in(idx, t_s)

    def plug_in(
        self,
        ev_idx: np.ndarray,
        at_s: np.ndarray | float,
        *,
        target_kwh: np.ndarray | float | None = None,
        p_set_kw: np.ndarray | float | None = None,
    ) -> None:
        """EVs ``ev_idx`` (distinct) are plugged in from ``at_s`` (a later time than now: the
        kernel charges them from then on). ``target_kwh``, if given, is the session's target;
        ``p_set_kw``, if given, the set-point the session starts with (NaN: full power)."""
        idx = np.asarray(ev_idx, dtype=np.intp)
        self.plugged[idx] = True
        self.plug_s[idx] = at_s
        if target_kwh is not None:
            self.target_kwh[idx] = target_kwh
        if p_set_kw is not None:
            self.p_set_kw[idx] = p_set_kw

    def depart(self, ev_idx: np.ndarray) -> np.ndarray:
        """EVs ``ev_idx`` (distinct) unplug and leave now; their unmet energy, kWh.

        Unmet is the target less the state of charge, at least 0; it is also summed into
        ``unmet_departure_kwh``.
        """
        idx = np.asarray(ev_idx, dtype=np.intp)
        unmet = np.maximum(self.target_kwh[idx] - self.soc_kwh[idx], 0.0)
        self.unmet_departure_kwh[idx] += unmet
        self.plugged[idx] = False
        self.departure_s[idx] = np.inf
        return unmet

    def charge(self, t_s: float, dt_s: float) -> np.ndarray:
        """Run :func:`charge_step` over ``[t_s, t_s + dt_s)``; each EV's mean grid power, kW."""
        p_kw = np.empty(len(self))
        charge_step(
            float(t_s),
            float(dt_s),
            self.plugged,
            self.plug_s,
            self.departure_s,
            self.soc_kwh,
            self.target_kwh,
            self.max_p_kw,
            self.p_set_kw,
            self.efficiency,
            self.energy_kwh,
            p_kw,
        )
        return p_kw
