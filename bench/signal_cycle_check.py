"""Diagnostic: how much of twin's delay at signals is the signal programmes' cycle length.

twin's default fixed-time plans are Webster's (cycles of ~65-80 s on the shipped maps); SUMO's
netconvert default static programmes run 90 s cycles. This runs twin on the same random trips
(flat profile, one hour from 07:00, trip seed 1) twice: with its Webster plans, and with the
same green splits stretched to a 90 s cycle, and prints mean trip duration and time loss, so
the part of the twin/SUMO difference in bench/RESULTS.md that comes from the programmes is
measured, not guessed.

    python bench/signal_cycle_check.py baltimore 1520
    python bench/signal_cycle_check.py dortmund 480
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from twin.network.cache import load_roadnet
from twin.rng import stream
from twin.traffic.demand import random_trips
from twin.traffic.signals import SignalPlans, webster_plans
from twin.traffic.sim import TrafficSim

ROOT = Path(__file__).resolve().parents[1]


def stretched(plans: SignalPlans, cycle_s: float) -> SignalPlans:
    """The same green splits over ``cycle_s`` (signals with one phase stay green)."""
    for s in range(plans.n_signals):
        a, b = plans.phase_offsets[s], plans.phase_offsets[s + 1]
        if not np.isfinite(plans.cycle_s[s]):
            continue
        lost = (b - a) * (plans.yellow_s + plans.all_red_s)
        green = plans.green_s[a:b]
        plans.green_s[a:b] = np.round(green * (cycle_s - lost) / green.sum())
        plans.cycle_s[s] = plans.green_s[a:b].sum() + lost
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("map", help="a map in maps/ (NAME.osm.bz2)")
    parser.add_argument("trips_per_hour", type=int)
    parser.add_argument("--cycle-s", type=float, default=90.0)
    args = parser.parse_args()
    net = load_roadnet(ROOT / "maps" / f"{args.map}.osm.bz2")
    start = 7 * 3600.0
    trips = random_trips(
        net,
        n_trips=args.trips_per_hour,
        start_s=start,
        end_s=start + 3600.0,
        rng=stream(1, "trips"),
        profile="flat",
    )
    for label, cycle in (("Webster", None), (f"{args.cycle_s:g} s cycle", args.cycle_s)):
        plans = webster_plans(net, stream(1, "signal-offsets"))
        if cycle is not None:
            plans = stretched(plans, cycle)
        sim = TrafficSim(net, trips, seed=1, start_s=start, plans=plans)
        sim.run_until(start + 5400.0)
        k = sim.network_kpis()
        print(
            f"{args.map} {label:>12}: mean duration {k['mean_duration_s']:.1f} s, "
            f"time loss {k['mean_time_loss_s']:.1f} s ({k['trips_completed']} trips)"
        )


if __name__ == "__main__":
    main()
