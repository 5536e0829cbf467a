"""A cold first run's second compile process (twin.precompile): it compiles exactly the
signatures a real traffic step and a real power flow use, so its work is never wasted."""

from __future__ import annotations

import numpy as np
import pytest
from numba.core import event

from twin import precompile
from twin.energy.grid import Grid
from twin.energy.powerflow import solve
from twin.network.synthetic import grid_roadnet
from twin.traffic.demand import random_trips
from twin.traffic.sim import TrafficSim


def compiled_during(fn) -> set[str]:
    """Names of the functions Numba compiled (not loaded from its cache) while ``fn`` ran."""
    with event.install_recorder("numba:compile") as rec:
        fn()
    return {ev.data["dispatcher"].py_func.__name__ for _, ev in rec.buffer if ev.is_start}


def test_the_passes_compiled_apart_are_the_ones_a_step_uses() -> None:
    # a real run's step (compiled here, or loaded with its passes' cache entries) first; then
    # the explicit signatures must all be found: a pass compiled again would mean the helper's
    # (or this process's) early compile was for types the step never calls it with
    net = grid_roadnet(3, 3)
    trips = random_trips(
        net, rng=np.random.default_rng(0), start_s=0.0, end_s=60.0, n_trips=20, profile="flat"
    )
    TrafficSim(net, trips, seed=0, start_s=0.0).advance(30)
    passes = precompile.traffic_passes()
    assert {d.py_func.__name__ for d, _, helper in passes if helper} == {"plan_speeds"}
    loop, loop_sig = precompile.steps_loop()

    def compile_all() -> None:
        for main in (True, False):
            precompile.compile_passes(main=main)
        loop.compile(loop_sig)

    again = compiled_during(compile_all)
    assert not again & ({d.py_func.__name__ for d, _, _ in passes} | {"run_steps"}), again


def test_the_router_compiled_apart_is_the_one_a_run_routes_with() -> None:
    # a real sim's routing (trips at the start, running vehicles when re-routed) first; the
    # helper's tiny router must then compile nothing new
    net = grid_roadnet(4, 4)
    trips = random_trips(
        net, rng=np.random.default_rng(1), start_s=0.0, end_s=60.0, n_trips=30, profile="flat"
    )
    sim = TrafficSim(net, trips, seed=0, start_s=0.0)
    sim.router.routes_from_links(np.array([0, 3]), np.array([15, 12]))
    again = compiled_during(precompile._compile_router)
    assert not again, again


def test_the_helper_says_when_the_router_is_cached_and_before_routing_waits(monkeypatch) -> None:
    monkeypatch.setattr(precompile, "wanted", lambda components: True)
    compiled = []
    monkeypatch.setattr(precompile, "compile_passes", lambda *, main: compiled.append(main))
    assert precompile.start(["traffic"])
    helper = precompile._helper
    lines = []
    monkeypatch.setattr(precompile, "_read_line", lambda s, t: lines.append(s.readline()))
    precompile.before_routing()
    assert compiled == [True]  # this process's passes, while the helper compiles the router
    assert lines == [(precompile.ROUTER_READY + "\n").encode()]
    assert precompile.finish() == 0
    assert compiled == [True]  # finish() does not compile them again
    assert helper.returncode == 0


def test_the_power_flow_compiled_apart_is_the_one_a_solve_uses() -> None:
    grid = Grid(
        bus_vn_kv=np.array([10.0, 10.0, 10.0]),
        branch_from=np.array([0, 1]),
        branch_to=np.array([1, 2]),
        branch_r_ohm=np.array([0.5, 0.01]),
        branch_x_ohm=np.array([0.4, 0.01]),
        slack_bus=0,
        load_bus=np.array([2, 2]),
        load_p_mw=np.array([0.01, 0.02]),
        load_q_mvar=np.array([0.001, 0.002]),
    )
    p = np.full((5, 2), 0.01)  # as the energy component calls it: minutes x loads
    solve(grid, p_mw=p, q_mvar=0.1 * p, max_iter=300, check=False)
    assert "sweep" not in compiled_during(precompile._compile_powerflow)


@pytest.mark.parametrize(
    ("env", "components", "cores"),
    [("0", ["traffic", "energy"], 2), ("1", ["energy"], 2), ("1", ["traffic"], 1)],
)
def test_no_helper_where_it_cannot_pay(monkeypatch, env, components, cores) -> None:
    monkeypatch.setenv(precompile.ENV, env)
    monkeypatch.setattr(precompile, "_cores", lambda: cores)
    monkeypatch.setattr("twin.progress.kernels_cached", lambda _: False)  # as if cold
    assert not precompile.wanted(components)
    assert not precompile.start(components)
    assert precompile.finish() is None  # nothing to wait for


def test_the_helper_runs_and_is_waited_for(monkeypatch) -> None:
    # the real helper process (its kernels load from the cache here, so it is quick)
    monkeypatch.setattr(precompile, "wanted", lambda components: True)
    assert precompile.start(["traffic", "energy"])
    assert precompile.finish() == 0
    assert precompile.finish() is None  # waited for once


def test_cores_are_counted_where_the_os_cannot_pin(monkeypatch) -> None:
    monkeypatch.delattr(precompile.os, "sched_getaffinity", raising=False)  # macOS, Windows
    assert precompile._cores() == (precompile.os.cpu_count() or 1)


def test_no_helper_when_the_kernels_are_cached(monkeypatch) -> None:
    monkeypatch.setenv(precompile.ENV, "1")
    monkeypatch.setattr(precompile, "_cores", lambda: 2)
    monkeypatch.setattr("twin.progress.kernels_cached", lambda _: True)
    assert not precompile.wanted(["traffic", "energy"])
    monkeypatch.setattr("twin.progress.kernels_cached", lambda _: False)
    assert precompile.wanted(["traffic", "energy"])


@pytest.mark.parametrize(("stdin", "want"), [(b"go\n", "True"), (b"", "False"), (None, "False")])
def test_the_helper_waits_for_go_but_not_forever(stdin, want) -> None:
    # "go": compile the loop; EOF (the model went away): stop; silence: stop after the timeout
    import subprocess
    import sys

    code = "from twin.precompile import _told_go; print(_told_go(0.5))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        out = proc.stdout.read()  # the helper ends by itself in each case
    finally:
        proc.kill()
        proc.wait()
    assert out.decode().strip() == want
