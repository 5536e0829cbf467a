"""Benchmark: twin's training environments against sumo-rl (with libsumo), env steps per second.

Both sides step random signal actions from a seeded generator, one decision every
:data:`DECISION_S` seconds (1 s simulation steps), on the same network and the same trip table,
in the same process and run, repeats interleaved (twin, then each sumo-rl set-up, then again).
The timed quantity is ``env.step`` calls per second: applying the actions, simulating the
interval, the observation and the reward. The action sampling, ``reset`` (timed apart) and
construction are outside it; so is a warm-up episode on each side that loads (or compiles)
twin's Numba kernels. Steps/s are medians over ``--repeat`` episodes; the ratio is
twin / sumo-rl of the medians (> 1: twin faster).

**Cases** (``--which``):

- ``single``: one signalised crossroads. SUMO runs sumo-rl's own example network
  (``nets/2way-single-intersection``: four 150 m arms of two lanes each way, 13.9 m/s, four
  green phases: through/right and protected left per axis); twin runs its closest equivalent,
  :func:`twin.network.synthetic.crossroads_roadnet` with the same arms, lanes and speed and a
  protected left phase per axis (four phases). Demand: the per-movement rates of sumo-rl's
  ``single-intersection-vhvh.rou.xml`` (first period: 1,000 veh/h from north and south each,
  250 from east and west; :data:`VHVH_VPH`), drawn once as Poisson arrivals (trip seed
  :data:`SEED`) and given to both as the same vehicles (SUMO: explicit ``<vehicle>`` elements on
  sumo-rl's routes, ``departSpeed="0"`` as twin inserts at rest); level ``sumo-rl`` is those
  rates, ``light`` 0.3 times them (:data:`SINGLE_LEVELS`). One hour (720 decisions).
- ``city``: Baltimore. twin: ``scenarios/baltimore.toml`` (households' trips) cut to
  ``--city-start`` for ``--city-duration`` (default 07:30, 15 min: 180 decisions), every
  signal with more than one phase an agent. SUMO: the same OSM file through ``netconvert`` as
  in ``bench/bench_sumo.py`` (its flags and twin's default speeds), every traffic light a
  sumo-rl agent; the scenario's trip table (after ``reset(seed=42)``), each trip's ends
  matched to SUMO edges as in bench_sumo, shifted to start at 0 and routed beforehand by
  ``duarouter`` (so SUMO routes outside the timed steps, as twin does at reset).

**Pairs**: ``gym``: twin :class:`~twin.control.envs.SignalEnv` (one agent, every controlled
signal) against sumo-rl's ``SumoEnvironment`` (``single_agent=True`` on the crossroads, its
native multi-agent dict API on the city, the one call that steps every signal), with
``add_system_info`` and ``add_per_agent_info`` off ("lean", the fastest sumo-rl; twin's info
is only the clock) and, as a second reference, on (sumo-rl's defaults). ``pettingzoo``: twin
:class:`~twin.control.envs.SignalParallelEnv` against ``sumo_rl.parallel_env``; sumo-rl 1.4.5
breaks on PettingZoo >= 1.25 (``agent_selector`` became a module: sumo-rl issue #228), so its
one-line fix (sumo-rl PR #231: use ``AgentSelector``) is applied at import.

sumo-rl settings: ``delta_time=5``, ``yellow_time=3``, ``min_green=7`` (twin: 7 s minimum
green, 3 s yellow and 2 s all-red, enforced by the engine; sumo-rl has no all-red),
``reward_fn="queue"`` (twin's default reward is the same: minus the halted vehicles on the
controlled approaches), ``time_to_teleport=300`` (twin's gridlock limit), ``sumo_seed=42``.

Vehicles in the network are sampled after every step, outside the timing (twin: running
vehicles; SUMO: ``vehicle.getIDCount()``); vehicles waiting to enter at the end of the episode
too. Separate passes (``twin_breakdown``, ``sumo_rl_breakdown``) time the parts of one
step on each side; ``twin_empty_advance_us`` is twin's kernel call for one decision on the
empty crossroads (its fixed cost).

    pip install -e ".[bench]"          # eclipse-sumo, sumo-rl, libsumo
    NUMBA_NUM_THREADS=1 python bench/bench_envs.py [--which single city] [--repeat 3] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from bench_sumo import convert, matched_trips, sumo_home, sumo_version, write_sumo_trips

from twin.control.envs import SignalEnv, SignalParallelEnv
from twin.network.synthetic import crossroads_roadnet
from twin.results import machine, software_versions
from twin.scenario import load_scenario
from twin.traffic.demand import Trips
from twin.traffic.sim import TrafficSim
from twin.traffic.state import RUNNING, WAITING

ROOT = Path(__file__).resolve().parents[1]
DECISION_S = 5  # s between decisions, both sides
YELLOW_S = 3  # s, sumo-rl yellow_time (twin: 3 s yellow + 2 s all-red, engine defaults)
MIN_GREEN_S = 7  # s, sumo-rl min_green (twin: ControlConfig.min_green, 7 s)
TELEPORT_S = 300  # s, SUMO --time-to-teleport (twin: Params.stuck_limit_s)
SEED = 42  # reset seed of both sides, and the trip seed of the crossroads
ACTION_SEED = 0  # the random policy's generator, both sides
WARMUP_STEPS = 20  # steps of an untimed first episode on each side
TARGET = 50.0  # the target: twin / sumo-rl (lean) steps per second, gym pair
# vehicles waiting to enter: bins of twin's advance time in twin_breakdown
WAITING_BINS = ((0, 100), (100, 400), (400, 800), (800, 1200), (1200, 10**9))

# sumo-rl's 2way-single-intersection: arms, lanes, speed (nets/.../single-intersection.edg.xml)
SINGLE_ARM_M = 150.0
SINGLE_LANES = 2
SINGLE_SPEED_MPS = 13.9
SINGLE_EPISODE_S = 3600
# veh/h per movement (from arm, to arm): single-intersection-vhvh.rou.xml, first period
VHVH_VPH = {
    ("n", "s"): 350, ("n", "w"): 350, ("n", "e"): 300,
    ("s", "n"): 350, ("s", "e"): 350, ("s", "w"): 300,
    ("e", "w"): 100, ("e", "n"): 100, ("e", "s"): 50,
    ("w", "e"): 100, ("w", "s"): 100, ("w", "n"): 50,
}  # fmt: skip
SINGLE_LEVELS = {"sumo-rl": 1.0, "light": 0.3}  # multiples of VHVH_VPH
TWIN_NODE = {"n": 1, "e": 2, "s": 3, "w": 4}  # crossroads_roadnet's arm ends


# -- the timed loop ---------------------------------------------------------------------------


@dataclass
class Side:
    """One environment under test, behind the few calls the loop needs."""

    name: str
    make: Callable[[], Any]  # a fresh (or the kept) environment
    reset: Callable[[Any], None]
    sample: Callable[[Any, np.random.Generator], Any]  # random actions
    step: Callable[[Any, Any], bool]  # one env.step; True when the episode ended
    vehicles: Callable[[Any], int]  # in the network now
    waiting: Callable[[Any], int]  # due but not yet in the network
    close: Callable[[Any], None] = lambda env: None


def run_episode(side: Side, max_steps: int) -> dict[str, Any]:
    """reset, then ``env.step`` until the episode ends or ``max_steps``; each step timed."""
    env = side.make()
    t0 = time.perf_counter()
    side.reset(env)
    reset_s = time.perf_counter() - t0
    rng = np.random.default_rng(ACTION_SEED)
    step_s, vehicles = [], []
    done = False
    while not done and len(step_s) < max_steps:
        action = side.sample(env, rng)
        t0 = time.perf_counter()
        done = side.step(env, action)
        step_s.append(time.perf_counter() - t0)
        vehicles.append(side.vehicles(env))
    waiting = side.waiting(env)
    side.close(env)
    total = sum(step_s)
    return {
        "reset_s": reset_s,
        "steps": len(step_s),
        "step_s_total": total,
        "steps_per_s": len(step_s) / total,
        "step_ms_median": 1e3 * statistics.median(step_s),
        "vehicles_mean": float(np.mean(vehicles)),
        "vehicles_max": int(max(vehicles)),
        "waiting_to_enter_at_end": waiting,
    }


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Medians over the repeats, and every repeat's steps/s."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["steps"] = runs[0]["steps"]
    out["steps_per_s_all"] = [round(r["steps_per_s"], 2) for r in runs]
    out["reset_s_all"] = [round(r["reset_s"], 4) for r in runs]
    return out


def bench_pair(sides: list[Side], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then ``--repeat`` rounds of one episode per side, interleaved."""
    for side in sides:
        run_episode(side, WARMUP_STEPS)
    runs: dict[str, list[dict]] = {s.name: [] for s in sides}
    for _ in range(args.repeat):
        for side in sides:
            runs[side.name].append(run_episode(side, args.steps or 10**9))
            r = runs[side.name][-1]
            print(
                f"    {side.name:22} {r['steps_per_s']:9.1f} steps/s  ({r['steps']} steps, "
                f"{r['vehicles_mean']:.0f} vehicles, reset {r['reset_s']:.3f} s)",
                flush=True,
            )
    out = {name: summarise(rs) for name, rs in runs.items()}
    twin_name, twin_sps = sides[0].name, out[sides[0].name]["steps_per_s"]
    out["ratio"] = {
        f"{twin_name} / {s.name}": {
            "of_medians": twin_sps / out[s.name]["steps_per_s"],
            "per_repeat": [
                round(a["steps_per_s"] / b["steps_per_s"], 2)
                for a, b in zip(runs[twin_name], runs[s.name], strict=True)
            ],
        }
        for s in sides[1:]
    }
    return out


# -- twin sides -------------------------------------------------------------------------------


def twin_counts(sim) -> tuple[int, int]:
    state = sim.fleet.state
    return int((state == RUNNING).sum()), int((state == WAITING).sum())


def twin_gym(make: Callable[[], SignalEnv]) -> Side:
    env = make()  # built once (network, routing tables); reset rebuilds the episode

    def step(e: SignalEnv, a: Any) -> bool:
        return e.step(a)[3]

    return Side(
        name="twin SignalEnv",
        make=lambda: env,
        reset=lambda e: e.reset(seed=SEED),
        sample=lambda e, rng: rng.integers(0, e.action_space.nvec),
        step=step,
        vehicles=lambda e: twin_counts(e.sim)[0],
        waiting=lambda e: twin_counts(e.sim)[1],
    )


def twin_parallel(make: Callable[[], SignalParallelEnv]) -> Side:
    env = make()

    def step(e: SignalParallelEnv, a: dict) -> bool:
        e.step(a)
        return not e.agents

    return Side(
        name="twin SignalParallelEnv",
        make=lambda: env,
        reset=lambda e: e.reset(seed=SEED),
        sample=lambda e, rng: {
            a: int(rng.integers(e.action_space(a).n)) for a in e.possible_agents
        },
        step=step,
        vehicles=lambda e: twin_counts(e.sim)[0],
        waiting=lambda e: twin_counts(e.sim)[1],
    )


def twin_breakdown(env: SignalEnv, max_steps: int) -> dict[str, Any]:
    """Mean microseconds per decision of each part of ``SignalEnv.step`` (one episode), and
    the median ``advance`` by the number of vehicles waiting to enter (the insertion queue)."""
    env.reset(seed=SEED)
    ep, rng = env._ep, np.random.default_rng(ACTION_SEED)
    parts = dict.fromkeys(("apply", "advance", "observe", "features", "reward"), 0.0)
    n, updates0, by_waiting = 0, env.sim.updates, []
    while not ep.done and n < max_steps:
        a = rng.integers(0, env.action_space.nvec)
        t0 = time.perf_counter()
        ep.ctl.apply(a, policy=env)
        t1 = time.perf_counter()
        ep.advance()
        t2 = time.perf_counter()
        obs = ep.ctl.observe()
        t3 = time.perf_counter()
        _ = obs.features
        t4 = time.perf_counter()
        _ = -float(obs.approach_queue_veh.sum())
        t5 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            parts[key] += dt
        by_waiting.append((twin_counts(env.sim)[1], 1e6 * (t2 - t1)))
        n += 1
    out: dict[str, Any] = {f"{k}_us": 1e6 * v / n for k, v in parts.items()}
    out["total_us"] = sum(out.values())
    out["vehicle_updates_per_step"] = (env.sim.updates - updates0) / n
    out["kernel_updates_per_s"] = out["vehicle_updates_per_step"] / (out["advance_us"] * 1e-6)
    waiting, advance_us = np.array(by_waiting).T
    bins = {}
    for lo, hi in WAITING_BINS:
        m = (waiting >= lo) & (waiting < hi)
        if m.any():
            bins[f"{lo}-{hi}"] = {"advance_us": float(np.median(advance_us[m])),
                                  "decisions": int(m.sum())}  # fmt: skip
    out["advance_us_median_by_waiting"] = bins
    return out


def empty_advance_us(net, calls: int = 2000) -> float:
    """One decision's kernel call (DECISION_S steps) on ``net`` with no vehicle, us."""
    far = Trips(np.array([0]), net.link_from[:1], net.link_to[:1], np.array([1e7]))
    sim = TrafficSim(net, far, seed=0, start_s=0.0)
    sim.advance(10)
    t0 = time.perf_counter()
    for _ in range(calls):
        sim.advance(DECISION_S)
    return 1e6 * (time.perf_counter() - t0) / calls


# -- sumo-rl sides ----------------------------------------------------------------------------


def import_sumo_rl():
    """sumo_rl on libsumo, with the PettingZoo >= 1.25 fix of sumo-rl PR #231."""
    os.environ.setdefault("LIBSUMO_AS_TRACI", "1")
    import sumo_rl.environment.env as sumo_rl_env
    from pettingzoo.utils.agent_selector import AgentSelector

    sumo_rl_env.agent_selector = AgentSelector
    import sumo_rl
    import traci

    if not traci.isLibsumo():
        raise SystemExit("bench_envs: traci is not libsumo; set LIBSUMO_AS_TRACI=1")
    return sumo_rl, traci


def sumo_kwargs(net_xml: Path, routes_xml: Path, episode_s: int, info: bool) -> dict:
    return {
        "net_file": str(net_xml),
        "route_file": str(routes_xml),
        "num_seconds": episode_s,
        "delta_time": DECISION_S,
        "yellow_time": YELLOW_S,
        "min_green": MIN_GREEN_S,
        "reward_fn": "queue",
        "time_to_teleport": TELEPORT_S,
        "sumo_seed": SEED,
        "sumo_warnings": False,
        "add_system_info": info,
        "add_per_agent_info": info,
    }


def sumo_gym(kw: dict, *, single_agent: bool, info: bool) -> Side:
    """sumo-rl's SumoEnvironment, built fresh for each episode (libsumo runs one simulation
    per process, so no two are kept open)."""
    sumo_rl, traci = import_sumo_rl()
    kw = {**kw, "single_agent": single_agent, "add_system_info": info, "add_per_agent_info": info}

    def sample(e, rng: np.random.Generator) -> Any:
        if single_agent:
            return int(rng.integers(e.action_space.n))
        return {ts: int(rng.integers(e.action_spaces(ts).n)) for ts in e.ts_ids}

    def step(e, a: Any) -> bool:
        out = e.step(a)
        return bool(out[3]) if single_agent else bool(out[2]["__all__"])

    return Side(
        name=f"sumo-rl ({'default info' if info else 'lean'})",
        make=lambda: sumo_rl.SumoEnvironment(**kw),
        reset=lambda e: e.reset(seed=SEED),
        sample=sample,
        step=step,
        vehicles=lambda e: traci.vehicle.getIDCount(),
        waiting=lambda e: len(traci.simulation.getPendingVehicles()),
        close=lambda e: e.close(),
    )


def sumo_parallel(kw: dict) -> Side:
    sumo_rl, traci = import_sumo_rl()

    def step(e, a: dict) -> bool:
        e.step(a)
        return not e.agents

    return Side(
        name="sumo-rl parallel_env",
        make=lambda: sumo_rl.parallel_env(**kw),
        reset=lambda e: e.reset(seed=SEED),
        sample=lambda e, rng: {a: int(rng.integers(e.action_space(a).n)) for a in e.agents},
        step=step,
        vehicles=lambda e: traci.vehicle.getIDCount(),
        waiting=lambda e: len(traci.simulation.getPendingVehicles()),
        close=lambda e: e.close(),
    )


def sides_for(
    twin_env: Callable[[type], Any], kw: dict, *, single_agent: bool
) -> dict[str, list[Side]]:
    return {
        "gym": [
            twin_gym(lambda: twin_env(SignalEnv)),
            sumo_gym(kw, single_agent=single_agent, info=False),
            sumo_gym(kw, single_agent=single_agent, info=True),
        ],
        "pettingzoo": [
            twin_parallel(lambda: twin_env(SignalParallelEnv)),
            sumo_parallel({**kw, "add_system_info": False, "add_per_agent_info": False}),
        ],
    }


def sumo_breakdown(kw: dict, *, single_agent: bool, max_steps: int) -> dict[str, float]:
    """Mean milliseconds per decision of each part of sumo-rl's ``SumoEnvironment.step``
    (lean: no info): applying the actions, ``_run_steps`` (``DECISION_S`` SUMO steps and the
    per-second signal updates), observations, rewards; one episode."""
    sumo_rl, _ = import_sumo_rl()
    env = sumo_rl.SumoEnvironment(**kw, single_agent=single_agent)
    env.reset(seed=SEED)
    rng = np.random.default_rng(ACTION_SEED)
    parts = dict.fromkeys(("apply", "simulate", "observe", "reward"), 0.0)
    n, done = 0, False
    while not done and n < max_steps:
        if single_agent:
            a: Any = int(rng.integers(env.action_space.n))
        else:
            a = {ts: int(rng.integers(env.action_spaces(ts).n)) for ts in env.ts_ids}
        t0 = time.perf_counter()
        env._apply_actions(a)
        t1 = time.perf_counter()
        env._run_steps()
        t2 = time.perf_counter()
        env._compute_observations()
        t3 = time.perf_counter()
        env._compute_rewards()
        t4 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key] += dt
        done = env._compute_dones()["__all__"]
        n += 1
    env.close()
    out = {f"{k}_ms": 1e3 * v / n for k, v in parts.items()}
    out["total_ms"] = sum(out.values())
    return out


# -- single intersection ----------------------------------------------------------------------


def od_trips(scale: float, end_s: float, seed: int) -> tuple[Trips, list[tuple[str, str]]]:
    """Poisson arrivals of every VHVH_VPH movement times ``scale`` over [0, end_s), sorted by
    departure; and each trip's (from arm, to arm)."""
    rng = np.random.default_rng(seed)
    times, moves = [], []
    for move, vph in VHVH_VPH.items():
        rate = vph * scale
        t = np.cumsum(rng.exponential(3600.0 / rate, int(rate * end_s / 3600 * 1.5) + 10))
        t = t[t < end_s]
        times.append(t)
        moves += [move] * len(t)
    depart = np.concatenate(times)
    order = np.argsort(depart, kind="stable")
    moves = [moves[i] for i in order]
    trips = Trips(
        trip_id=np.arange(len(depart)),
        origin_node=np.array([TWIN_NODE[a] for a, _ in moves], dtype=np.int32),
        dest_node=np.array([TWIN_NODE[b] for _, b in moves], dtype=np.int32),
        depart_s=depart[order],
    )
    return trips, moves


def write_single_routes(path: Path, trips: Trips, moves: list[tuple[str, str]]) -> None:
    """The same vehicles on sumo-rl's routes (edges ``<from>_t t_<to>``), inserted at rest."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("<routes>\n")
        for a, b in VHVH_VPH:
            fh.write(f'    <route id="{a}{b}" edges="{a}_t t_{b}"/>\n')
        for tid, dep, (a, b) in zip(trips.trip_id, trips.depart_s, moves, strict=True):
            fh.write(
                f'    <vehicle id="{tid}" route="{a}{b}" depart="{dep:.2f}" departSpeed="0" '
                'departLane="best"/>\n'
            )
        fh.write("</routes>\n")


def bench_single(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    sumo_rl, _ = import_sumo_rl()
    net_xml = (
        Path(sumo_rl.__file__).parent / "nets" / "2way-single-intersection"
        / "single-intersection.net.xml"
    )  # fmt: skip
    net = crossroads_roadnet(
        signal=True, arm_m=SINGLE_ARM_M, lanes=SINGLE_LANES, speed_mps=SINGLE_SPEED_MPS,
        protected_left=True,
    )  # fmt: skip
    out: dict[str, Any] = {
        "sumo_net": "sumo-rl nets/2way-single-intersection/single-intersection.net.xml",
        "twin_net": net.summary(),
        "episode_s": SINGLE_EPISODE_S,
        "twin_empty_advance_us": empty_advance_us(net),
        "levels": {},
    }
    for level, scale in SINGLE_LEVELS.items():
        trips, moves = od_trips(scale, SINGLE_EPISODE_S, SEED)
        routes_xml = workdir / f"single-{level}.rou.xml"
        write_single_routes(routes_xml, trips, moves)
        print(f"single, {level}: {len(trips)} trips ({sum(VHVH_VPH.values()) * scale:g} veh/h)")

        def twin_env(cls: type, trips: Trips = trips) -> Any:
            return cls(
                network=net, trips=lambda seed: trips, decision_s=DECISION_S,
                episode_s=SINGLE_EPISODE_S,
            )  # fmt: skip

        kw = sumo_kwargs(net_xml, routes_xml, SINGLE_EPISODE_S, info=False)
        row: dict[str, Any] = {
            "scale_of_vhvh": scale,
            "vehicles_per_hour": sum(VHVH_VPH.values()) * scale,
            "trips": len(trips),
        }
        for pair, sides in sides_for(twin_env, kw, single_agent=True).items():
            print(f"  {pair}", flush=True)
            row[pair] = bench_pair(sides, args)
        row["twin_breakdown"] = twin_breakdown(twin_env(SignalEnv), args.steps or 10**9)
        row["sumo_rl_breakdown"] = sumo_breakdown(
            kw, single_agent=True, max_steps=args.steps or 10**9
        )
        out["levels"][level] = row
    return out


# -- city -------------------------------------------------------------------------------------


def bench_city(home: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    sc = load_scenario(ROOT / "scenarios" / "baltimore.toml").with_overrides(
        {
            "time.start": args.city_start,
            "time.duration": args.city_duration,
            "time.report_interval": args.city_duration,
        }
    )
    t0 = time.perf_counter()
    probe = SignalEnv(sc)
    construct_s = time.perf_counter() - t0
    probe.reset(seed=SEED)
    net, trips, start_s = probe._ep.network, probe.sim.trips, sc.time.start_s
    episode_s = round(probe._ep.episode_s)
    sumo_net = convert(home, Path(sc.map.file), workdir, "twin")
    same, ends = matched_trips(net, [sumo_net], trips)
    shifted = Trips(same.trip_id, same.origin_node, same.dest_node, same.depart_s - start_s)
    trips_xml, routes_xml = workdir / "city.trips.xml", workdir / "city.rou.xml"
    write_sumo_trips(trips_xml, shifted, *ends["twin"])
    t0 = time.perf_counter()
    subprocess.run(
        [str(home / "bin" / "duarouter"), "-n", str(sumo_net.net_xml), "-r", str(trips_xml),
         "-o", str(routes_xml), "--ignore-errors", "--no-warnings", "--no-step-log"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    duarouter_s = time.perf_counter() - t0
    print(
        f"city: {len(trips)} twin trips, {len(same)} matched to SUMO edges; "
        f"{probe.signal_control.n} twin agents, {sumo_net.info()['traffic_lights']} SUMO lights",
        flush=True,
    )

    def twin_env(cls: type) -> Any:
        return cls(sc)

    kw = sumo_kwargs(sumo_net.net_xml, routes_xml, episode_s, info=False)
    out: dict[str, Any] = {
        "scenario": f"scenarios/baltimore.toml, start {args.city_start}, {args.city_duration}",
        "episode_s": episode_s,
        "twin_trips": len(trips),
        "sumo_trips": len(same),
        "twin_agents": probe.signal_control.n,
        "sumo_net": sumo_net.info(),
        "twin_net": net.summary(),
        "twin_construct_s": construct_s,
        "sumo_duarouter_s": duarouter_s,
    }
    for pair, sides in sides_for(twin_env, kw, single_agent=False).items():
        print(f"  {pair}", flush=True)
        out[pair] = bench_pair(sides, args)
    out["twin_breakdown"] = twin_breakdown(probe, args.steps or 10**9)
    out["sumo_rl_breakdown"] = sumo_breakdown(kw, single_agent=False, max_steps=args.steps or 10**9)
    return out


# -- report -----------------------------------------------------------------------------------


def targets(report: dict) -> dict[str, Any]:
    """The issue's target: twin >= TARGET x sumo-rl (lean) steps/s, gym pair."""
    rows = {}
    if "single" in report["cases"]:
        rows["single"] = report["cases"]["single"]["levels"]["sumo-rl"]["gym"]
    if "city" in report["cases"]:
        rows["city"] = report["cases"]["city"]["gym"]
    out = {}
    for case, row in rows.items():
        ratio = row["ratio"]["twin SignalEnv / sumo-rl (lean)"]["of_medians"]
        out[case] = {"ratio": ratio, "target": TARGET, "pass": bool(ratio >= TARGET)}
    return out


def versions(home: Path) -> dict[str, str]:
    out = {**software_versions(), "sumo": sumo_version(home)}
    for pkg in ("sumo-rl", "libsumo", "gymnasium", "pettingzoo"):
        out[pkg] = metadata.version(pkg)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--which", nargs="+", choices=["single", "city"], default=["single", "city"])
    add("--repeat", type=int, default=3, help="timed episodes per environment (median)")
    add("--steps", type=int, default=0, help="time at most this many steps (0: whole episode)")
    add("--city-start", default="07:30", help="city episode start (scenario time.start)")
    add("--city-duration", default="15min", help="city episode length (scenario time.duration)")
    add("--out", type=Path, default=ROOT / "bench" / "results" / "envs.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    home = sumo_home()
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-envs-"))
    cases: dict[str, Any] = {}
    try:
        if "single" in args.which:
            cases["single"] = bench_single(workdir, args)
        if "city" in args.which:
            cases["city"] = bench_city(home, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(home),
        "settings": {
            "decision_s": DECISION_S,
            "sumo_rl": {"yellow_time": YELLOW_S, "min_green": MIN_GREEN_S,
                        "time_to_teleport": TELEPORT_S, "reward_fn": "queue"},
            "twin": {"min_green_s": 7, "yellow_s": 3, "all_red_s": 2, "reward": "queue"},
            "reset_seed": SEED,
            "action_seed": ACTION_SEED,
            "repeat": args.repeat,
            "steps_cap": args.steps or None,
            "warmup_steps": WARMUP_STEPS,
            "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
            "libsumo_as_traci": os.environ.get("LIBSUMO_AS_TRACI"),
        },
        "cases": cases,
    }  # fmt: skip
    report["targets"] = targets(report)
    report["bench_wall_s"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {args.out} ({report['bench_wall_s']:.0f} s)")
    for case, t in report["targets"].items():
        print(f"  {case}: twin / sumo-rl (lean) = {t['ratio']:.1f}x -> "
              f"{'PASS' if t['pass'] else 'FAIL'} (target {t['target']:g}x)")  # fmt: skip


if __name__ == "__main__":
    main()
