"""A cold first run compiles its heaviest kernels in two processes at once.

Numba compiles on one thread, and a first run (nothing in Numba's on-disk cache) spends most
of its wall time compiling. With two or more cores, :func:`start` launches a helper process
that compiles the router's kernel (:mod:`twin.traffic.routing_kernel`, on a tiny network),
says so on its stdout, then compiles the traffic kernel's plan pass
(:func:`twin.traffic.kernel.plan_speeds`, the largest) into the shared cache, while this
process builds the model. :func:`before_routing` compiles the kernel's other passes here
(movement, insertion, lane changes) and waits for the router's kernel before the first trips
are routed (which then load it from the cache). :func:`finish` tells the helper, which
compiles the step loop (:func:`~twin.traffic.kernel.run_steps`, linking all the passes from
the cache) while this process compiles the power-flow sweep; it then waits for the helper,
and the first step loads the helper's machine code from the cache. The functions and their
signatures are the ones a run compiles anyway (the helper takes them from tiny inputs built
by the same code, :func:`traffic_passes`), so the results do not change. Off with
``TWIN_PARALLEL_COMPILE=0``; a helper that fails only costs the time it saved.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from functools import cache
from typing import Any

ENV = "TWIN_PARALLEL_COMPILE"
WAIT_S = 600.0  # the longest the first step waits for the helper before compiling itself

_helper: subprocess.Popen[bytes] | None = None
_powerflow_here = False  # finish() compiles the power-flow sweep (the run has a grid)
_passes_done = False  # before_routing() compiled this process's passes
ROUTER_READY = "router"  # the helper's line on stdout once the router's kernel is cached


def wanted(components: list[str]) -> bool:
    """Whether a helper would pay: traffic runs, its kernels are not cached, two cores."""
    from twin.progress import kernels_cached

    if os.environ.get(ENV, "1").strip() == "0" or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return False
    if "traffic" not in components or _cores() < 2:
        return False
    return kernels_cached(["traffic"]) is False


def _cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):  # Linux; not macOS or Windows
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start(components: list[str]) -> bool:
    """Launch the helper if :func:`wanted`; whether one runs now."""
    global _helper, _powerflow_here, _passes_done
    if _helper is not None and _helper.poll() is None:
        return True
    if not wanted(components):
        return False
    _powerflow_here = "energy" in components
    _passes_done = False
    _helper = subprocess.Popen(
        [sys.executable, "-m", "twin.precompile", "router", "plan", "steps"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop)  # a run that ends early (an error) does not leave it compiling
    return True


def _stop() -> None:
    if _helper is not None and _helper.poll() is None:
        _helper.kill()


def _go() -> None:
    """Tell the helper this process's passes are in the cache (it may compile the loop)."""
    if _helper is None or _helper.stdin is None:
        return
    try:
        _helper.stdin.write(b"go\n")
        _helper.stdin.close()
    except OSError:  # the helper has gone: the first step compiles what it did not
        pass


def before_routing() -> None:
    """Before the first trips are routed: compile this process's traffic passes (the helper
    compiles the router's kernel meanwhile), then wait for the router's kernel to be cached."""
    global _passes_done
    if _helper is None:
        return
    compile_passes(main=True)
    _passes_done = True
    if _helper.stdout is not None:
        _read_line(_helper.stdout, WAIT_S)  # EOF (the helper failed) or silence: route anyway


def _read_line(stream: Any, timeout_s: float) -> str:
    """One line of ``stream``, or "" at EOF or after ``timeout_s``."""
    import threading

    line: list[bytes | str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not line:
        return ""
    text = line[0]
    return (text.decode() if isinstance(text, bytes) else text).strip()


def finish() -> int | None:
    """Before the first traffic step: compile the traffic kernel's passes the helper does not
    and the power-flow sweep (while it works), then wait for it; its exit status (None: no
    helper was started)."""
    global _helper
    if _helper is None:
        return None
    try:
        if not _passes_done:
            compile_passes(main=True)
        _go()
        if _powerflow_here:
            _compile_powerflow()
        return _helper.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:  # pragma: no cover - the first step compiles it then
        _helper.kill()
        return None
    finally:
        _helper = None


def traffic_passes() -> list[tuple[Any, tuple[Any, ...], bool]]:
    """The traffic kernel's passes as ``(dispatcher, signature, in the helper)``: the types
    :func:`twin.traffic.kernel.run_steps` calls them with, from a tiny synthetic network's arrays
    built by the same code as a run's (a test checks a real step compiles no other)."""
    import numpy as np
    from numba import typeof, types

    from twin.traffic import kernel, lanechange, lanes

    sim = _tiny_sim()
    net, fl, p, stats = sim.arrays, sim.fleet, sim.params, sim.stats
    n, fl_t, p_t, st_t = typeof(net), typeof(fl), typeof(p), typeof(stats)
    i32, i64, f64 = types.Array(types.int32, 1, "C"), types.int64, types.float64
    moved = typeof(np.empty(1, dtype=np.int64))
    return [
        (kernel.plan_speeds, (n, fl_t, p_t, i32, f64, f64, i64, i64), True),
        (kernel.insert_waiting, (n, fl_t, p_t, st_t, typeof(sim._wait), i64, f64), False),
        (lanes.occupied_lanes, (fl_t, i32), False),
        (kernel.move, (n, fl_t, p_t, st_t, i32, f64, f64, moved, i64), False),
        (lanechange.change_lanes, (n, fl_t, p_t), False),
    ]


def steps_loop() -> tuple[Any, tuple[Any, ...]]:
    """``(run_steps, signature)``: the step loop as :class:`~twin.traffic.sim.TrafficSim`
    calls it (the helper compiles it once every pass is in the cache)."""
    from numba import typeof

    from twin.traffic import kernel

    return kernel.run_steps, tuple(typeof(a) for a in _tiny_sim().run_steps_args(1))


def compile_passes(*, main: bool) -> None:
    """Compile (or load from the cache) this process's share of :func:`traffic_passes`."""
    for dispatcher, signature, in_helper in traffic_passes():
        if in_helper != main:
            dispatcher.compile(signature)


@cache
def _tiny_sim() -> Any:
    """A TrafficSim on a 2 x 2 grid with one trip (no routing kernel): the kernel's inputs."""
    import numpy as np

    from twin.network.synthetic import grid_roadnet
    from twin.traffic.demand import Trips
    from twin.traffic.routing import RouteSet
    from twin.traffic.sim import TrafficSim

    net = grid_roadnet(2, 2)

    class _OneLink:  # the router's interface, without compiling the routing kernel
        def routes(self, origins: Any, dests: Any) -> RouteSet:
            return RouteSet(
                np.array([0, 1], dtype=np.int64),
                np.array([0], dtype=np.int32),
                np.ones(1),
                np.ones(1, dtype=bool),
            )

    trips = Trips(np.array([0]), net.link_from[:1], net.link_to[:1], np.array([0.0]))
    return TrafficSim(net, trips, seed=0, start_s=0.0, router=_OneLink())  # type: ignore[arg-type]


def _compile_powerflow() -> None:
    """The power-flow sweep, by solving a two-bus grid the way the energy component does."""
    import numpy as np

    from twin.energy.grid import Grid
    from twin.energy.powerflow import solve

    grid = Grid(
        bus_vn_kv=np.array([10.0, 10.0]),
        branch_from=np.array([0]),
        branch_to=np.array([1]),
        branch_r_ohm=np.array([1.0]),
        branch_x_ohm=np.array([1.0]),
        slack_bus=0,
        load_bus=np.array([1]),
        load_p_mw=np.array([0.1]),
        load_q_mvar=np.array([0.01]),
    )
    solve(grid, p_mw=np.full((1, 1), 0.1), q_mvar=np.full((1, 1), 0.01), check=False)


def _compile_router() -> None:
    """The router's kernel, by routing trips and running vehicles on a tiny network the way
    :class:`~twin.traffic.sim.TrafficSim` routes them (the same types)."""
    import numpy as np

    from twin.network.synthetic import grid_roadnet
    from twin.traffic.routing import Router

    router = Router(grid_roadnet(3, 3))
    router.routes(np.array([0, 1]), np.array([8, 7]))
    router.routes_from_links(np.array([0]), np.array([8]))


def _told_go(timeout_s: float) -> bool:
    """Whether "go" arrives on stdin within ``timeout_s`` (a model that never calls
    :func:`finish` does not keep the helper waiting past that)."""
    return _read_line(sys.stdin, timeout_s) == "go"


def _main(jobs: list[str]) -> int:
    import twin  # noqa: F401  (installs the cache locator first)

    if "router" in jobs:
        _compile_router()
        print(ROUTER_READY, flush=True)
    if "plan" in jobs:
        compile_passes(main=False)
    if "steps" in jobs and _told_go(WAIT_S):  # the other passes are in the cache
        dispatcher, signature = steps_loop()
        dispatcher.compile(signature)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
