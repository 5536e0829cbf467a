"""TrafficSim: vehicles on a RoadNet from a trip table, stepped by the Numba kernel.

Usable on its own (tests, benchmarks, the Gymnasium environments later) or as the traffic
component of a CityModel, which calls :meth:`TrafficSim.step` from its clock. Every trip gets
one vehicle and a fastest route: at the start, or, for a large trip table, computed ahead
in departure order by a second thread while the loop runs (the same routes,
:mod:`twin.traffic.prefetch`); trips with no route are known at the start, reported (count
and examples) and never driven. Each step: release the trips now due into the waiting queue,
run the vehicle kernel, then advance the signals.

Trip chaining (``Trips.after_trip_id``, ``Trips.min_dwell_s``): a trip that follows another
(the same vehicle's previous leg) is released into the waiting queue at its planned departure
like any other, but is held there until the trip it follows has arrived and its dwell time has
passed; its ``depart_s`` is then the time it actually entered, so ``depart_delay_s`` in
:meth:`TrafficSim.trip_table` includes the hold. A held trip counts as waiting
(``Counts.waiting``, ``vehicles_waiting``); ``Counts.held`` / ``vehicles_held`` say how many of
those wait for their previous leg rather than for room on their first link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.network.road import RoadNet
from twin.rng import stream
from twin.traffic import kernel
from twin.traffic.demand import Trips
from twin.traffic.junctions import GapParams
from twin.traffic.prefetch import BLOCK_TRIPS, RoutePrefetch, can_prefetch
from twin.traffic.renumber import renumber
from twin.traffic.route_store import concat_ranges
from twin.traffic.routing import Router, RouteSet
from twin.traffic.signals import SignalPlans, run_signals, webster_plans
from twin.traffic.state import (
    ARRIVED,
    RUNNING,
    SCHEDULED,
    UNROUTABLE,
    WAITING,
    Fleet,
    Params,
    lane_links,
    net_arrays,
    new_fleet,
    new_link_stats,
    new_wait_queue,
)

SPEED_FACTOR_BOUNDS = (0.2, 2.0)  # SUMO's default vType: speedFactor normc(1, dev, 0.2, 2)
#: a trip about to set out is routed again when its route is now this many times slower
#: than at free flow (judgement, by a measured trade-off: on a Baltimore weekday 1.5 routes
#: 15k trips again and gives a mean trip of 468 s, 1.2 routes 77k for 466 s at a third more
#: run time, none gives 507 s)
DEPARTURE_SLOWDOWN = 1.5
STATUS_NAMES = {
    SCHEDULED: "scheduled",
    WAITING: "waiting",
    RUNNING: "running",
    ARRIVED: "arrived",
    UNROUTABLE: "unroutable",
}


def speed_factors(n: int, dev: float, seed: int) -> np.ndarray:
    """Each vehicle's speed factor (desired speed / speed limit): normal around 1 with spread
    ``dev``, bounded as SUMO's, from the named stream "speed-factor"."""
    if dev <= 0.0:
        return np.ones(n)
    draw = stream(seed, "speed-factor").normal(1.0, dev, n)
    return np.clip(draw, *SPEED_FACTOR_BOUNDS)


@dataclass
class Counts:
    """Where every vehicle is; the parts always add up to the number of trips."""

    scheduled: int
    waiting: int
    running: int
    arrived: int
    unroutable: int
    teleported: int  # vehicles teleported at least once (any state)
    gridlocked: int  # vehicles halted for the gridlock time at least once (any state)
    held: int = 0  # of the waiting: trips held until the trip they follow arrives (+ dwell)

    @property
    def total(self) -> int:
        return self.scheduled + self.waiting + self.running + self.arrived + self.unroutable


def peak_hour_flows_vph(routes: RouteSet, depart_s: np.ndarray, n_links: int) -> np.ndarray:
    """Each link's planned flow in its busiest hour, veh/h: the routed trips that use it,
    binned by the hour they depart (what a signal engineer's counts would show)."""
    n_per = np.diff(routes.offsets)
    hour = np.floor(np.asarray(depart_s, dtype=float) / 3600.0).astype(np.int64)
    if len(routes.links) == 0:
        return np.zeros(n_links)
    hour = np.repeat(hour - hour.min(), n_per)
    n_hours = int(hour.max()) + 1
    counts = np.bincount(hour * n_links + routes.links, minlength=n_hours * n_links)
    return counts.reshape(n_hours, n_links).max(axis=0).astype(float)


#: steps between renumberings of the running fleet in lane order (twin.traffic.renumber), and
#: the fewest running vehicles for which it pays: below, their state fits in the caches
RENUMBER_EVERY_STEPS = 100
RENUMBER_MIN_RUNNING = 20_000
#: the Fleet arrays the trip table reads
TRIP_COLUMNS = (
    "depart_plan_s", "depart_s", "arrive_s", "dist_m", "time_loss_s", "wait_s", "stops",
    "teleports", "gridlocked", "state",
)  # fmt: skip

#: the Fleet arrays the network KPIs read
_KPI_COLUMNS = ("state", "dist_m", "depart_s", "arrive_s", "time_loss_s")
#: by state: not arrived yet (a trip held for it waits whatever its dwell)
_NOT_ARRIVED = np.zeros(len(STATUS_NAMES), dtype=bool)
_NOT_ARRIVED[[SCHEDULED, WAITING, RUNNING]] = True


class _ByTrip:
    """One fleet array read by trip: ``a[trips]`` is ``array[vehicle_of_trip[trips]]``."""

    __slots__ = ("_array", "_vehicle")

    def __init__(self, array: np.ndarray, vehicle_of_trip: np.ndarray) -> None:
        self._array, self._vehicle = array, vehicle_of_trip

    def __getitem__(self, trips):
        return self._array[self._vehicle[trips]]

    def all(self) -> np.ndarray:
        """The whole array in trip order (a copy)."""
        return self._array[self._vehicle]


class TripView:
    """The fleet's per-vehicle arrays indexed by trip (row of the trip table), whatever the
    vehicles' current numbering: ``sim.by_trip.state[trips]``."""

    def __init__(self, sim: TrafficSim) -> None:
        self._sim = sim

    def __getattr__(self, name: str) -> _ByTrip:
        return _ByTrip(getattr(self._sim.fleet, name), self._sim.vehicle_of_trip)


class TrafficSim:
    """Microscopic traffic on ``net`` for ``trips``, starting at ``start_s``."""

    def __init__(
        self,
        net: RoadNet,
        trips: Trips,
        *,
        seed: int,
        start_s: float,
        dt_s: float = 1.0,
        params: Params | None = None,
        router: Router | None = None,
        plans: SignalPlans | None = None,
        gaps: GapParams | None = None,
        signal_timing: str = "capacity",
        renumber_every_steps: int | None = None,
        renumber_min_running: int | None = None,
        prefetch_routes: bool = True,
    ) -> None:
        self.net = net
        self.trips = trips
        self.dt_s = float(dt_s)
        self.params = params or Params()
        self.gaps = gaps or GapParams()
        self.arrays = net_arrays(net, self.gaps)
        self.router = router or Router(net)
        # trips surely routable go to a thread that routes them in departure order while the
        # loop runs (the same routes: routing.py's frozen copy); the others are routed here
        later = np.zeros(len(trips), dtype=bool)
        if prefetch_routes and not (plans is None and signal_timing == "demand"):
            later = self._routes_later(trips)
        now = np.flatnonzero(~later)
        first = self.router.routes(trips.origin_node[now], trips.dest_node[now])
        n_links = np.zeros(len(trips), dtype=np.int64)
        n_links[now] = np.diff(first.offsets)
        offsets = np.zeros(len(trips) + 1, dtype=np.int64)
        np.cumsum(n_links, out=offsets[1:])
        self._route_parts: list[tuple[np.ndarray, RouteSet]] = [(now, first)]
        self._routes: RouteSet | None = None
        self._routable = later.copy()
        self._routable[now] = first.ok
        self.fleet = new_fleet(
            offsets,
            first.links,
            trips.depart_s,
            int(self.arrays.link_lane_offset[-1]),
            lane_links(self.arrays),
            after=trips.after_index(),  # fleet index = position in the (sorted) trip table
            min_dwell_s=trips.min_dwell_s,
            speed_factor=speed_factors(len(trips), self.params.speed_dev, seed),
        )
        self.fleet.state[later] = SCHEDULED  # routes to come
        self.route_length_m = _route_lengths_m(offsets, first.links, net.link_length_m)
        if plans is None:
            flows = (
                peak_hour_flows_vph(first, trips.depart_s, net.n_links)
                if signal_timing == "demand"
                else None
            )
            plans = webster_plans(
                net,
                stream(seed, "signal-offsets"),
                approach_flow_vph=flows,
            )
        self.plans = plans
        run_signals(self.plans, self.arrays.mov_state, 0.0)
        self.stats = new_link_stats(net.n_links)
        n = len(trips)
        self._order = np.argsort(trips.depart_s, kind="stable").astype(np.int32)
        self._order = self._order[self.fleet.state[self._order] == SCHEDULED]
        self._next_due = 0
        self._wait = new_wait_queue(n)
        self._n_waiting = 0
        self._moved = np.full(n, -1, dtype=np.int64)
        self._slots_buf = np.empty(len(self.fleet.lane_head), dtype=np.int32)  # kernel scratch
        self._seed = int(stream(seed, "dawdling").integers(0, 2**62))
        self.step_no = 0
        self.t_s = float(start_s)
        self.updates = 0  # vehicle-updates done (running vehicles x steps)
        self.rerouted = 0  # routes replaced by reroute()
        self.routed_at_departure = 0  # routes given by route_departures()
        # link_times_s: link statistics summed over the flushed bins, and their values at
        # the start of the current window
        self._cum_veh_s = np.zeros(net.n_links)
        self._cum_exits = np.zeros(net.n_links, dtype=np.int64)
        self._mark_veh_s = np.zeros(net.n_links)
        self._mark_exits = np.zeros(net.n_links, dtype=np.int64)
        self._times_s: np.ndarray | None = None
        self._times_step = -1
        # the running vehicles are renumbered in lane order every so many steps (0: never);
        # vehicle_of_trip maps a trip (row of ``trips``) to its vehicle in ``fleet``
        self.renumber_every_steps = int(
            RENUMBER_EVERY_STEPS if renumber_every_steps is None else renumber_every_steps
        )
        self.renumber_min_running = int(
            RENUMBER_MIN_RUNNING if renumber_min_running is None else renumber_min_running
        )
        self.vehicle_of_trip = np.arange(n, dtype=np.int64)
        self._renumbered = False  # vehicle i is trip i until the first renumbering
        self._routes_used = len(self.fleet.route_links)  # route_links beyond: spare room
        self.by_trip = TripView(self)  # read the fleet by trip
        self._renumbered_at = 0
        self._bin_start_s = self.t_s
        self._prefetch: RoutePrefetch | None = None
        self._next_block = 0
        if later.any():
            pending = np.flatnonzero(later)
            pending = pending[np.argsort(trips.depart_s[pending], kind="stable")]
            self.router.kernel_graph()  # built once, read by both copies
            self._prefetch = RoutePrefetch(
                self.router.frozen_copy().routes,
                self.router.frozen_copy().routes,
                trips.origin_node,
                trips.dest_node,
                pending,
            )

    # -- routes computed ahead -----------------------------------------------------------------

    def _routes_later(self, trips: Trips) -> np.ndarray:
        """The trips to route in the background: those surely routable, when there are at
        least a block of them, the router is twin's own (a stand-in routes everything up
        front) and Numba's threading layer allows it; else none."""
        none = np.zeros(len(trips), dtype=bool)
        if len(trips) < BLOCK_TRIPS or not isinstance(self.router, Router):
            return none
        if not can_prefetch():
            return none
        later = self.router.surely_routable(trips.origin_node, trips.dest_node)
        return later if later.sum() >= BLOCK_TRIPS else none

    def _next_block_s(self) -> float:
        """The planned departure of the first trip of the next block not taken (inf: none)."""
        pf = self._prefetch
        if pf is None or self._next_block >= pf.n_blocks:
            return np.inf
        return float(self.trips.depart_s[pf.trips[pf.bounds[self._next_block]]])

    def _take_routes(self, until_s: float) -> None:
        """Install the routes of every block whose first trip sets out at ``until_s`` or
        earlier (waiting for the thread where it is behind); all of them for inf."""
        pf = self._prefetch
        while pf is not None and self._next_block < pf.n_blocks and self._next_block_s() <= until_s:
            k = self._next_block
            block = pf.trips[pf.bounds[k] : pf.bounds[k + 1]]
            found = pf.take(k)
            if not found.ok.all():  # surely_routable said they were
                raise RuntimeError(f"trips {block[~found.ok][:5]} found no route after all")
            self._install_routes(block, found)
            self._route_parts.append((block, found))
            self._next_block += 1
        if pf is not None and self._next_block >= pf.n_blocks:
            self._prefetch = None

    def _install_routes(self, trips: np.ndarray, found: RouteSet) -> None:
        """Give the vehicles of ``trips`` (not yet released) their first routes ``found``."""
        vehicles = self.vehicle_of_trip[trips]
        base = self._append_routes(found.links)
        fl = self.fleet
        fl.route_start[vehicles] = base + found.offsets[:-1]
        fl.route_end[vehicles] = base + found.offsets[1:]
        self.route_length_m[vehicles] = _route_lengths_m(
            found.offsets, found.links, self.net.link_length_m
        )

    def finish_routes(self) -> None:
        """Install every route still being computed ahead (waits for the thread)."""
        self._take_routes(np.inf)

    def close(self) -> None:
        """Stop routing ahead (a simulation given up early); later steps still work, routing
        what they need as they go."""
        if self._prefetch is not None:
            self._prefetch.close()

    def __del__(self) -> None:
        pf = getattr(self, "_prefetch", None)
        if pf is not None:
            pf._stop = True

    @property
    def routable(self) -> np.ndarray:
        """Whether each trip has a route (known from the start), read-only."""
        view = self._routable.view()
        view.flags.writeable = False
        return view

    @property
    def routes(self) -> RouteSet:
        """Every trip's first route (before any re-routing), in trip order."""
        if self._routes is None or self._prefetch is not None:
            self.finish_routes()
            trips = np.concatenate([t for t, _ in self._route_parts])
            sets = [r for _, r in self._route_parts]
            n_links = np.zeros(len(self.trips), dtype=np.int64)
            n_links[trips] = np.concatenate([np.diff(r.offsets) for r in sets])
            offsets = np.zeros(len(self.trips) + 1, dtype=np.int64)
            np.cumsum(n_links, out=offsets[1:])
            links = np.empty(offsets[-1], dtype=np.int32)
            time_s = np.full(len(self.trips), np.inf)
            ok = np.zeros(len(self.trips), dtype=bool)
            for t, r in self._route_parts:
                if len(t):
                    links[concat_ranges(offsets[t], offsets[t + 1])] = r.links
                    time_s[t], ok[t] = r.time_s, r.ok
            self._routes = RouteSet(offsets, links, time_s, ok)
        return self._routes

    # -- stepping ----------------------------------------------------------------------------

    def advance(self, n_steps: int = 1) -> None:
        """Advance by ``n_steps`` time steps (in one kernel call between renumberings)."""
        every = self.renumber_every_steps
        while n_steps > 0:
            chunk = n_steps
            if every > 0:
                due = self._renumbered_at + every - self.step_no
                if due <= 0:
                    if self.fleet.run_count[0] >= self.renumber_min_running:
                        self.renumber()
                    else:  # too few to pay: look again in ``every`` steps
                        self._renumbered_at = self.step_no
                    due = every
                chunk = min(chunk, due)
            self._kernel_steps(chunk)
            n_steps -= chunk

    def renumber(self) -> None:
        """Renumber the running vehicles in lane order (:mod:`twin.traffic.renumber`)."""
        self._renumbered_at = self.step_no
        ids = renumber(
            self.fleet, [self._moved, self.route_length_m], [self._wait.after[: self._n_waiting]]
        )
        if ids is not None:
            self.vehicle_of_trip[self.fleet.trip[ids]] = ids
            self._renumbered = True

    def run_steps_args(self, n_steps: int) -> tuple:
        """The arguments of :func:`twin.traffic.kernel.run_steps` for ``n_steps`` steps from
        now (also how :mod:`twin.precompile` learns its signature)."""
        return (
            self.arrays,
            self.fleet,
            self.params,
            self.stats,
            self._wait,
            self._n_waiting,
            self._moved,
            self._order,
            self._next_due,
            self.t_s,
            self.dt_s,
            self.step_no,
            self._seed,
            n_steps,
            self.plans.arrays(),
            self._slots_buf,
        )

    def _kernel_steps(self, n_steps: int) -> None:
        while n_steps > 0:
            # up to the step that would release the next block's first trip, then its routes
            ahead_s = self._next_block_s() - self.t_s
            due = n_steps if ahead_s == np.inf else int(np.ceil(ahead_s / self.dt_s - 1e-9))
            if due <= 0:
                self._take_routes(self.t_s + 0.5 * self.dt_s)
                continue
            chunk = min(n_steps, due)
            self._n_waiting, self._next_due, updates = kernel.run_steps(*self.run_steps_args(chunk))
            self.updates += updates
            self.step_no += chunk
            self.t_s += chunk * self.dt_s
            n_steps -= chunk

    def step(self) -> None:
        """Advance by one time step ``dt_s``."""
        self.advance(1)

    def run_until(self, t_s: float) -> None:
        """Step until the clock reaches ``t_s``."""
        self.advance(int(np.ceil((t_s - self.t_s) / self.dt_s - 1e-9)))

    # -- re-routing ---------------------------------------------------------------------------

    def link_times_s(self) -> np.ndarray:
        """Each link's recent travel time (s): by Little's law, the vehicle-seconds spent on
        it since the previous call at an earlier step over the vehicles that left it (a
        signal's red averages out over the cycles); where vehicles stood and none left, the
        vehicle-seconds themselves; never below free flow at the limits now (interventions
        may change them). The same times for every call within one step."""
        if self._times_step == self.step_no and self._times_s is not None:
            return self._times_s
        s = self.stats
        veh_s = self._cum_veh_s + s.veh_steps
        exits = self._cum_exits + s.exits
        spent_s, left = veh_s - self._mark_veh_s, exits - self._mark_exits
        self._mark_veh_s, self._mark_exits = veh_s, exits
        self._times_s = np.maximum(spent_s / np.maximum(left, 1), self._free_times_s())
        self._times_step = self.step_no
        return self._times_s

    def _free_times_s(self) -> np.ndarray:
        """Each link's free-flow time (s) at the limits now (interventions may change them)."""
        return self.net.link_length_m / self.arrays.link_speed_mps

    def reroute(self, share: float, rng: np.random.Generator) -> int:
        """Give a random ``share`` of the running vehicles (not on their last link) the
        fastest route on current travel times; returns how many got a new route."""
        fl = self.fleet
        running = fl.run_list[: fl.run_count[0]]
        running = running[np.argsort(fl.trip[running])]  # by trip: the same draws if renumbered
        on_last = fl.route_start[running] + fl.route_idx[running] + 1 >= fl.route_end[running]
        candidates = running[~on_last]
        chosen = candidates[rng.random(len(candidates)) < share]
        if len(chosen) == 0:
            return 0
        self.router.set_link_times(self.link_times_s())
        return self._new_routes_running(chosen)

    def route_departures(self, until_s: float) -> int:
        """Fastest routes on current travel times for the trips due to set out before
        ``until_s`` that are still scheduled and whose route is now more than
        DEPARTURE_SLOWDOWN times slower than at free flow (as drivers who check the traffic
        before they leave); returns how many got a new route. Closed links stay closed."""
        self._take_routes(until_s)
        fl = self.fleet
        order = self._order[self._next_due :]
        due = order[: int(np.searchsorted(fl.depart_plan_s[order], until_s, side="left"))]
        if len(due) == 0:
            return 0
        now_s = self.link_times_s()
        starts, ends = fl.route_start[due], fl.route_end[due]
        links = fl.route_links[concat_ranges(starts, ends)]
        bounds = np.concatenate([[0], np.cumsum(ends - starts)])
        free_s = self._free_times_s()
        slow = _sums(now_s[links], bounds) > DEPARTURE_SLOWDOWN * _sums(free_s[links], bounds)
        if not slow.any():
            return 0
        self.router.set_link_times(now_s)
        done, _ = self.detour(due[slow])
        self.routed_at_departure += done
        return done

    def routes_through(self, links: np.ndarray) -> np.ndarray:
        """Vehicles not yet arrived whose route ahead (after the link they are on, or
        from the start for those not yet on the network) uses any of ``links``; a vehicle on
        one of ``links`` is left out (caught inside a closure, it drives out on its route)."""
        self.finish_routes()
        fl = self.fleet
        hit = np.zeros(self.net.n_links, dtype=bool)
        hit[np.asarray(links, dtype=np.int64)] = True
        c = np.concatenate([[0], np.cumsum(hit[fl.route_links[: self._routes_used]])])
        state = fl.state
        live = np.flatnonzero((state == SCHEDULED) | (state == WAITING) | (state == RUNNING))
        live = live[~((state[live] == RUNNING) & hit[fl.link[live]])]  # inside: drives out
        start = fl.route_start[live] + fl.route_idx[live] + (state[live] == RUNNING)
        end = np.maximum(fl.route_end[live], start)
        return live[c[end] - c[start] > 0]

    def detour(self, vehicles: np.ndarray) -> tuple[int, int]:
        """New fastest routes (the router's current link times and closures) for
        ``vehicles``: running ones from the link they are on, the others from their origin.
        Returns (vehicles given a new route, vehicles for which none was found)."""
        fl = self.fleet
        vehicles = np.asarray(vehicles, dtype=np.int64)
        vehicles = vehicles[np.argsort(fl.trip[vehicles], kind="stable")]
        state = fl.state[vehicles]
        running = vehicles[state == RUNNING]
        pending = vehicles[(state == SCHEDULED) | (state == WAITING)]
        done = self._new_routes_running(running) if len(running) else 0
        if len(pending):
            trip = fl.trip[pending]
            found = self.router.routes(self.trips.origin_node[trip], self.trips.dest_node[trip])
            ok = found.ok
            pieces = [found.route(i) for i in np.flatnonzero(ok)]
            self._set_routes(pending[ok], pieces, behind_m=np.zeros(int(ok.sum())))
            done += int(ok.sum())
        return done, len(vehicles) - done

    def _new_routes_running(self, chosen: np.ndarray) -> int:
        """Routes from the current link of running vehicles ``chosen``; how many changed."""
        fl = self.fleet
        here = fl.link[chosen]
        found = self.router.routes_from_links(here, self.trips.dest_node[fl.trip[chosen]])
        ok = found.ok & self._can_take_first_turn(chosen, found)
        chosen, here = chosen[ok], here[ok]
        pieces = [
            np.concatenate([[cur], found.route(i)])
            for cur, i in zip(here, np.flatnonzero(ok), strict=True)
        ]
        # route length: what lay behind the current link, then the current link and the new route
        length = self.net.link_length_m
        behind_m = np.array(
            [
                self.route_length_m[v]
                - length[
                    fl.route_links[fl.route_start[v] + fl.route_idx[v] : fl.route_end[v]]
                ].sum()
                for v in chosen
            ]
        )
        self._set_routes(chosen, pieces, behind_m)
        self.rerouted += len(chosen)
        return len(chosen)

    def _set_routes(self, vehicles: np.ndarray, pieces: list[np.ndarray], behind_m) -> None:
        """Give ``vehicles`` the routes ``pieces`` (appended to the route store)."""
        if len(vehicles) == 0:
            return
        if self._prefetch is not None:  # their first routes in first, never over these
            self._take_routes(float(self.fleet.depart_plan_s[vehicles].max()))
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        base = self._append_routes(np.concatenate(pieces))
        fl = self.fleet
        starts = base + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        fl.route_start[vehicles] = starts
        fl.route_end[vehicles] = starts + lengths
        fl.route_idx[vehicles] = 0
        fl.lane_ok[vehicles] = False  # the kernel checks the lane against the new next turn
        wq, n = self._wait, self._n_waiting
        if n and (fl.state[vehicles] == WAITING).any():  # the queue's copy of the first link
            at = np.flatnonzero(np.isin(wq.vehicle[:n], vehicles))
            wq.first_link[at] = fl.route_links[fl.route_start[wq.vehicle[at]]]
        length = self.net.link_length_m
        self.route_length_m[vehicles] = np.asarray(behind_m) + [length[p].sum() for p in pieces]

    def _append_routes(self, links: np.ndarray) -> int:
        """Append ``links`` to the fleet's route store (grown geometrically); where they
        start."""
        fl, base = self.fleet, self._routes_used
        self._routes_used += len(links)
        if self._routes_used > len(fl.route_links):
            grown = np.zeros(max(self._routes_used, 2 * len(fl.route_links)), dtype=np.int32)
            grown[:base] = fl.route_links[:base]
            self.fleet = fl = fl._replace(route_links=grown)
        fl.route_links[base : self._routes_used] = links
        return base

    def _can_take_first_turn(self, vehicles: np.ndarray, found) -> np.ndarray:
        """Whether each vehicle could take its new route's first turn: from its lane, or by
        changing lanes before the line (it is not yet within two vehicle lengths of it)."""
        fl, net, arr = self.fleet, self.net, self.arrays
        near = net.link_length_m[fl.link[vehicles]] - fl.pos_m[vehicles] < 2.0 * (
            self.params.length_m + self.params.min_gap_m
        )
        ok = np.ones(len(vehicles), dtype=bool)
        for i in np.flatnonzero(near & found.ok):
            route = found.route(i)
            if len(route) == 0:
                continue
            link, v = int(fl.link[vehicles[i]]), vehicles[i]
            movs = [m for m in net.movements_from(link) if net.mov_to_link[m] == route[0]]
            lane = fl.lane[v] - arr.link_lane_offset[link]
            ok[i] = bool(movs) and net.mov_lane_first[movs[0]] <= lane <= net.mov_lane_last[movs[0]]
        return ok

    # -- what it measures --------------------------------------------------------------------

    def held(self) -> np.ndarray:
        """Which vehicles wait, at the current time, for the trip they follow to arrive (and
        their dwell time to pass) rather than for room on their first link (bool per vehicle)."""
        fl, t = self.fleet, self.t_s
        out = (fl.state == WAITING) & (fl.after >= 0)
        v = np.flatnonzero(out)
        prev = fl.after[v]
        s = fl.state[prev]
        out[v] = _NOT_ARRIVED[s] | ((s == ARRIVED) & (t < fl.arrive_s[prev] + fl.min_dwell_s[v]))
        return out

    def active(self) -> int:
        """Vehicles not yet released, waiting to enter or running (cheap: no scan)."""
        return len(self._order) - self._next_due + self._n_waiting + int(self.fleet.run_count[0])

    def counts(self) -> Counts:
        n = np.bincount(self.fleet.state, minlength=len(STATUS_NAMES))
        return Counts(
            scheduled=int(n[SCHEDULED]),
            waiting=int(n[WAITING]),
            running=int(n[RUNNING]),
            arrived=int(n[ARRIVED]),
            unroutable=int(n[UNROUTABLE]),
            teleported=int(np.count_nonzero(self.fleet.teleports)),
            gridlocked=int(np.count_nonzero(self.fleet.gridlocked)),
            held=int(np.count_nonzero(self.held())),
        )

    def unroutable_examples(self, k: int = 5) -> list[tuple[int, int, int]]:
        """Up to ``k`` (trip id, origin OSM node, destination OSM node) with no route."""
        bad = np.flatnonzero(~self._routable)[:k]
        osm = self.net.node_osmid
        return [
            (
                int(self.trips.trip_id[i]),
                int(osm[self.trips.origin_node[i]]),
                int(osm[self.trips.dest_node[i]]),
            )
            for i in bad
        ]

    def _in_trip_order(self, columns: tuple[str, ...] = TRIP_COLUMNS) -> Fleet:
        """The fleet's ``columns`` in trip order (copies; the other arrays as they are)."""
        v = self.vehicle_of_trip
        return self.fleet._replace(**{f: getattr(self.fleet, f)[v] for f in columns})

    def trip_table(self) -> pd.DataFrame:
        """One row per trip: timing, route, time loss, waiting, stops, teleports, status."""
        self.finish_routes()
        fl = self._in_trip_order()
        return pd.DataFrame(
            {
                "trip_id": self.trips.trip_id,
                "after_trip_id": self.trips.after_trip_id,
                "origin_node": self.trips.origin_node,
                "dest_node": self.trips.dest_node,
                "depart_plan_s": fl.depart_plan_s,
                "depart_s": fl.depart_s,
                "depart_delay_s": fl.depart_s - fl.depart_plan_s,
                "arrive_s": fl.arrive_s,
                "duration_s": fl.arrive_s - fl.depart_s,
                "route_length_m": self.route_length_m[self.vehicle_of_trip],
                "dist_m": fl.dist_m,
                "time_loss_s": fl.time_loss_s,
                "wait_s": fl.wait_s,
                "stops": fl.stops,
                "teleports": fl.teleports,
                "gridlocked": fl.gridlocked,
                "status": pd.Categorical.from_codes(
                    fl.state, categories=[STATUS_NAMES[i] for i in range(len(STATUS_NAMES))]
                ),
            }
        )

    def network_kpis(self) -> dict[str, float]:
        """Network totals so far: counts, vehicle-km and vehicle-hours, mean speed.

        ``vehicles_waiting`` counts every trip due but not yet on the network, including
        those held for their previous leg (``vehicles_held``, a part of it); a waiting or
        held vehicle adds no vehicle-hours (those start at insertion)."""
        c = self.counts()
        # sums in trip order (the same whatever the numbering): vehicle i is trip i until
        # the first renumbering
        fl = self._in_trip_order(_KPI_COLUMNS) if self._renumbered else self.fleet
        done = fl.state == ARRIVED
        vkt = float(fl.dist_m.sum() / 1000.0)
        vht = float(
            np.nansum(
                np.where(fl.state == RUNNING, self.t_s - fl.depart_s, fl.arrive_s - fl.depart_s)
            )
            / 3600.0
        )
        return {
            "vehicles_running": c.running,
            "vehicles_waiting": c.waiting,
            "vehicles_held": c.held,
            "trips_completed": c.arrived,
            "trips_unroutable": c.unroutable,
            "vehicles_teleported": c.teleported,
            "vehicles_gridlocked": c.gridlocked,
            "vehicle_km": vkt,
            "vehicle_hours": vht,
            "mean_speed_kmh": vkt / vht if vht > 0 else 0.0,
            "mean_duration_s": float(np.mean((fl.arrive_s - fl.depart_s)[done]))
            if done.any()
            else float("nan"),
            "mean_time_loss_s": float(np.mean(fl.time_loss_s[done]))
            if done.any()
            else float("nan"),
        }

    def flush_link_bin(self) -> pd.DataFrame:
        """Per-link flow, speed, density and queue since the last flush; resets the bins."""
        s, net = self.stats, self.net
        span_s = max(self.t_s - self._bin_start_s, 1e-9)
        veh = s.veh_steps
        frame = pd.DataFrame(
            {
                "t_start_s": self._bin_start_s,
                "t_end_s": self.t_s,
                "link": np.arange(net.n_links, dtype=np.int32),
                "flow_vph": s.exits * 3600.0 / span_s,
                "mean_speed_mps": np.divide(
                    s.speed_sum, veh, out=np.full_like(veh, np.nan), where=veh > 0
                ),
                "density_veh_per_km": veh / span_s / (net.link_length_m / 1000.0),
                "mean_queue_veh": s.halt_steps / span_s,
                "max_queue_veh": s.queue_max,
            }
        )
        self._cum_veh_s = self._cum_veh_s + s.veh_steps  # kept for link_times_s
        self._cum_exits = self._cum_exits + s.exits
        for arr in s:
            arr[:] = 0
        self._bin_start_s = self.t_s
        return frame[(frame["flow_vph"] > 0) | (frame["density_veh_per_km"] > 0)]


def _route_lengths_m(offsets: np.ndarray, links: np.ndarray, link_length_m) -> np.ndarray:
    """Each CSR route's length (m), its links added in order (bincount: the same sums
    wherever the routes lie in memory, unlike numpy's SIMD reductions)."""
    n = len(offsets) - 1
    trip = np.repeat(np.arange(n), np.diff(offsets))
    weights = link_length_m[links].astype(np.float64)
    return np.bincount(trip, weights=weights, minlength=n).astype(np.float64, copy=False)


def _sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums of ``values[bounds[i]:bounds[i + 1]]`` for each i (0 for an empty range)."""
    c = np.concatenate([[0.0], np.cumsum(values)])
    return c[bounds[1:]] - c[bounds[:-1]]
