"""Radial power flow: published 33-bus figures, a numpy reference, energy balance, batching,
validation, and agreement with pandapower's Newton-Raphson (those tests need pandapower)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import pickle

import numba
import numpy as np
import pytest

from twin.energy import Grid, compile_grid, from_pandapower, solve, to_pandapower
from twin.energy import powerflow_kernel as pfk
from twin.energy.powerflow import WARM_START_CHUNK, run_kernel
from twin.errors import GridError

# Baran & Wu (1989), IEEE Trans. Power Delivery 4(2) 1401-1407, table 1: the 12.66 kV 33-bus
# feeder, 0-based buses (from, to, r_ohm, x_ohm) and loads (bus, p_kw, q_kvar).
BW33_LINES = [
    (0, 1, 0.0922, 0.047), (1, 2, 0.493, 0.2511), (2, 3, 0.366, 0.1864), (3, 4, 0.3811, 0.1941),
    (4, 5, 0.819, 0.707), (5, 6, 0.1872, 0.6188), (6, 7, 0.7114, 0.2351), (7, 8, 1.03, 0.74),
    (8, 9, 1.044, 0.74), (9, 10, 0.1966, 0.065), (10, 11, 0.3744, 0.1238),
    (11, 12, 1.468, 1.155), (12, 13, 0.5416, 0.7129), (13, 14, 0.591, 0.526),
    (14, 15, 0.7463, 0.545), (15, 16, 1.289, 1.721), (16, 17, 0.732, 0.574),
    (1, 18, 0.164, 0.1565), (18, 19, 1.5042, 1.3554), (19, 20, 0.4095, 0.4784),
    (20, 21, 0.7089, 0.9373), (2, 22, 0.4512, 0.3083), (22, 23, 0.898, 0.7091),
    (23, 24, 0.896, 0.7011), (5, 25, 0.203, 0.1034), (25, 26, 0.2842, 0.1447),
    (26, 27, 1.059, 0.9337), (27, 28, 0.8042, 0.7006), (28, 29, 0.5075, 0.2585),
    (29, 30, 0.9744, 0.963), (30, 31, 0.3105, 0.3619), (31, 32, 0.341, 0.5302),
]  # fmt: skip
BW33_LOADS = [
    (1, 100, 60), (2, 90, 40), (3, 120, 80), (4, 60, 30), (5, 60, 20), (6, 200, 100),
    (7, 200, 100), (8, 60, 20), (9, 60, 20), (10, 45, 30), (11, 60, 35), (12, 60, 35),
    (13, 120, 80), (14, 60, 10), (15, 60, 20), (16, 60, 20), (17, 90, 40), (18, 90, 40),
    (19, 90, 40), (20, 90, 40), (21, 90, 40), (22, 90, 50), (23, 420, 200), (24, 420, 200),
    (25, 60, 25), (26, 60, 25), (27, 60, 20), (28, 120, 70), (29, 200, 600), (30, 150, 70),
    (31, 210, 100), (32, 60, 40),
]  # fmt: skip
BW33_LOSSES_KW = 202.68  # Baran & Wu's published total losses
BW33_MIN_VM_PU = 0.91309  # at bus 18 (1-based), index 17


def baran_wu_33() -> Grid:
    lines = np.array(BW33_LINES)
    loads = np.array(BW33_LOADS, dtype=float)
    return Grid(
        name="baran-wu-33",
        bus_vn_kv=np.full(33, 12.66),
        branch_from=lines[:, 0],
        branch_to=lines[:, 1],
        branch_r_ohm=lines[:, 2],
        branch_x_ohm=lines[:, 3],
        slack_bus=0,
        load_bus=loads[:, 0],
        load_p_mw=loads[:, 1] / 1e3,
        load_q_mvar=loads[:, 2] / 1e3,
    )


def random_feeder(seed: int, n_bus: int = 30) -> Grid:
    """A random radial grid: lines either way round with charging, 10/0.4 kV transformers with
    magnetising branch, taps, phase shift and either orientation, loads and generators."""
    rng = np.random.default_rng(seed)
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, n_bus)])
    vn = np.empty(n_bus)
    vn[0] = 10.0
    trafo = np.zeros(n_bus - 1, dtype=bool)
    for b in range(1, n_bus):
        trafo[b - 1] = vn[parent[b]] == 10.0 and rng.random() < 0.15
        vn[b] = 0.4 if trafo[b - 1] else vn[parent[b]]
    child = np.arange(1, n_bus)
    swap = rng.random(n_bus - 1) < 0.3  # from end = child
    fr = np.where(swap, child, parent[child])
    to = np.where(swap, parent[child], child)
    length = rng.uniform(0.05, 0.5, n_bus - 1)
    r = np.where(vn[child] == 10.0, 0.2, 0.3) * length
    x = np.where(vn[child] == 10.0, 0.1, 0.08) * length
    b_us = np.where(vn[child] == 10.0, 60.0, 50.0) * length  # cable charging
    g_us = np.zeros(n_bus - 1)
    sn = np.where(trafo, 0.63, np.nan)
    vn_from = np.where(trafo, np.where(swap, 0.41, 10.2), vn[fr])
    vn_to = np.where(trafo, np.where(swap, 10.2, 0.41), vn[to])
    z_to = 0.04 * vn_to**2 / 0.63  # vk 4 %, referred to the to winding
    r = np.where(trafo, 0.25 * z_to, r)
    x = np.where(trafo, math.sqrt(1 - 0.25**2) * z_to, x)
    g_us = np.where(trafo, 1.5e-3 / vn_to**2 * 1e6, g_us)  # pfe 1.5 kW
    b_us = np.where(trafo, -6e-3 / vn_to**2 * 1e6, b_us)  # i0 ~1 %
    tap = rng.uniform(0.95, 1.05, n_bus - 1)
    tap_side_from = rng.random(n_bus - 1) < 0.5
    n_load = n_bus
    load_bus = rng.integers(1, n_bus, n_load)
    p = rng.uniform(0, 30e-3, n_load) * np.where(vn[load_bus] == 10.0, 5, 1)
    n_sgen = 4
    return Grid(
        name=f"random-{seed}",
        bus_vn_kv=vn,
        branch_from=fr,
        branch_to=to,
        branch_r_ohm=r,
        branch_x_ohm=x,
        branch_g_us=g_us,
        branch_b_us=b_us,
        branch_is_trafo=trafo,
        branch_length_km=np.where(trafo, np.nan, length),
        branch_max_i_ka=np.where(trafo, np.nan, 0.3),
        branch_sn_mva=sn,
        branch_vn_from_kv=vn_from,
        branch_vn_to_kv=vn_to,
        branch_tap_from_pu=np.where(trafo & tap_side_from, tap, 1.0),
        branch_tap_to_pu=np.where(trafo & ~tap_side_from, tap, 1.0),
        branch_shift_degree=np.where(trafo, rng.choice([0.0, 30.0, 150.0], n_bus - 1), 0.0),
        slack_bus=0,
        slack_vm_pu=1.02,
        slack_va_degree=5.0,
        sn_mva=1.0,
        load_bus=load_bus,
        load_p_mw=p,
        load_q_mvar=p * rng.uniform(0, 0.5, n_load),
        sgen_bus=rng.integers(1, n_bus, n_sgen),
        sgen_p_mw=rng.uniform(0, 20e-3, n_sgen),
        sgen_q_mvar=rng.uniform(-5e-3, 5e-3, n_sgen),
    )


def reference_solve(grid: Grid, tol: float = 1e-14) -> tuple[np.ndarray, complex]:
    """Bus voltages and slack power (MVA) by a Z-bus fixed point on the full nodal admittance
    matrix (MATPOWER's branch model, no radial sweep): an independent check of the kernel."""
    c = compile_grid(grid)
    nb = grid.n_bus
    ys = 1 / c.z_pu
    n = c.n_tap
    y = np.zeros((nb, nb), dtype=complex)
    for k, (f, t) in enumerate(zip(grid.branch_from, grid.branch_to, strict=True)):
        y[f, f] += (ys[k] + c.y_from_pu[k]) / abs(n[k]) ** 2
        y[t, t] += ys[k] + c.y_to_pu[k]
        y[f, t] -= ys[k] / np.conj(n[k])
        y[t, f] -= ys[k] / n[k]
    s = np.zeros(nb, dtype=complex)  # injected, pu
    np.add.at(s, grid.load_bus, -(grid.load_p_mw + 1j * grid.load_q_mvar) / grid.sn_mva)
    np.add.at(s, grid.sgen_bus, (grid.sgen_p_mw + 1j * grid.sgen_q_mvar) / grid.sn_mva)
    sl = grid.slack_bus
    pq = np.setdiff1d(np.arange(nb), [sl])
    v = np.ones(nb, dtype=complex)
    v[sl] = c.v_slack
    v[pq] = np.linalg.solve(y[np.ix_(pq, pq)], -y[pq, sl] * v[sl])  # no-load voltages
    y_inv = np.linalg.inv(y[np.ix_(pq, pq)])
    for _ in range(500):
        v_new = y_inv @ (np.conj(s[pq] / v[pq]) - y[pq, sl] * v[sl])
        done = np.abs(v_new - v[pq]).max() < tol
        v[pq] = v_new
        if done:
            break
    s_slack = v[sl] * np.conj(y[sl] @ v) * grid.sn_mva
    return v, complex(s_slack)


# --- the published 33-bus figures --------------------------------------------------------------


def test_baran_wu_33_published_figures() -> None:
    r = solve(baran_wu_33())
    assert r.converged.all()
    assert r.losses_mw[0] * 1e3 == pytest.approx(BW33_LOSSES_KW, abs=0.1)  # 202.68 kW
    assert abs(r.losses_mw[0] - BW33_LOSSES_KW / 1e3) < 1e-4  # MW
    assert int(np.argmin(r.vm_pu[0])) == 17
    assert abs(r.vm_pu[0].min() - BW33_MIN_VM_PU) < 1e-4


# --- the kernel against references -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_nodal_reference(seed: int) -> None:
    grid = random_feeder(seed)
    r = solve(grid)
    v_ref, s_ref = reference_solve(grid)
    assert np.abs(r.v_pu[0] - v_ref).max() < 1e-9
    assert r.slack_p_mw[0] == pytest.approx(s_ref.real, abs=1e-9)
    assert r.slack_q_mvar[0] == pytest.approx(s_ref.imag, abs=1e-9)


def test_baran_wu_matches_nodal_reference() -> None:
    grid = baran_wu_33()
    v_ref, s_ref = reference_solve(grid)
    r = solve(grid)
    assert np.abs(r.v_pu[0] - v_ref).max() < 1e-9
    assert r.slack_p_mw[0] == pytest.approx(s_ref.real, abs=1e-9)


def _python_kernel(monkeypatch: pytest.MonkeyPatch):
    """The sweep kernel as plain Python: every Numba function of the kernel module replaced
    by its Python source (``.py_func``) for the duration of the test."""
    for name, f in vars(pfk).items():
        if hasattr(f, "py_func") and name != "sweep":
            monkeypatch.setattr(pfk, name, f.py_func)
    return pfk.sweep.py_func


def _assert_results_equal(a, b, exact: bool = True) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if exact:
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=f.name)


def _batch(grid: Grid, n_steps: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(n_steps, n) C-contiguous loads (0.4-0.9 of the grid's, slowly varying, with noise)
    and generation."""
    rng = np.random.default_rng(seed)
    shape = 0.6 + 0.2 * np.sin(np.linspace(0, 3, n_steps))[:, None]
    scale = shape * rng.uniform(0.9, 1.1, (n_steps, grid.n_load))
    gen = rng.uniform(0, 2, (n_steps, grid.n_sgen))
    arrays = (
        grid.load_p_mw * scale,
        grid.load_q_mvar * scale,
        grid.sgen_p_mw * gen,
        grid.sgen_q_mvar * gen,
    )
    return tuple(np.ascontiguousarray(a) for a in arrays)


@pytest.mark.parametrize("warm_start", [True, False])
def test_numba_kernel_equals_its_python_version(monkeypatch, warm_start: bool) -> None:
    grid = random_feeder(7, n_bus=12)
    c = compile_grid(grid)
    p, q, gp, gq = _batch(grid, 5, seed=3)
    fast = run_kernel(c, p, q, gp, gq, chunk=2, warm_start=warm_start)
    slow = run_kernel(
        c, p, q, gp, gq, chunk=2, warm_start=warm_start, kernel=_python_kernel(monkeypatch)
    )
    assert fast.converged.all()
    # the same IEEE operations in the same order: vectorised or not, the same bits
    _assert_results_equal(fast, slow)


def test_results_do_not_depend_on_threads() -> None:
    grid = random_feeder(4, n_bus=80)
    c = compile_grid(grid)
    p, q, gp, gq = _batch(grid, 100, seed=4)
    serial = run_kernel(c, p, q, gp, gq, chunk=7, kernel=pfk.sweep)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, 2, threads}):
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            parallel = run_kernel(c, p, q, gp, gq, chunk=7, kernel=pfk.sweep_parallel)
            _assert_results_equal(serial, parallel)
            _assert_results_equal(serial, run_kernel(c, p, q, gp, gq, chunk=7))
    finally:
        numba.set_num_threads(threads)


# --- balance and batching ----------------------------------------------------------------------


def _profiles(grid: Grid, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 1.5, (n_steps, grid.n_load))
    return grid.load_p_mw * scale, grid.load_q_mvar * scale


@pytest.mark.parametrize("grid", [baran_wu_33(), random_feeder(11), random_feeder(12)])
def test_energy_balance_every_snapshot(grid: Grid) -> None:
    p, q = _profiles(grid, 24, seed=1)
    sgp = np.tile(grid.sgen_p_mw, (24, 1)) * np.linspace(0, 2, 24)[:, None]
    r = solve(grid, p, q, sgen_p_mw=sgp)
    assert r.converged.all()
    balance = p.sum(axis=1) - sgp.sum(axis=1) + r.losses_mw
    np.testing.assert_allclose(r.slack_p_mw, balance, rtol=0, atol=1e-9)
    assert (r.losses_mw > 0).all()


def test_batched_equals_one_by_one() -> None:
    grid = random_feeder(3, n_bus=60)
    p, q = _profiles(grid, 16, seed=2)
    batch = solve(grid, p, q, warm_start=False)  # every snapshot from a flat start
    warm = solve(grid, p, q)
    for t in range(16):
        one = solve(grid, p[t], q[t])
        for name in ("vm_pu", "va_degree", "branch_i_ka", "branch_loading_percent"):
            np.testing.assert_array_equal(getattr(batch, name)[t], getattr(one, name)[0])
        for name in ("losses_mw", "slack_p_mw", "slack_q_mvar", "n_iter"):
            assert getattr(batch, name)[t] == getattr(one, name)[0]
        # warm-started from the snapshot before: the same answer to within the tolerance
        np.testing.assert_allclose(warm.vm_pu[t], one.vm_pu[0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(warm.va_degree[t], one.va_degree[0], rtol=0, atol=1e-7)
        np.testing.assert_allclose(warm.branch_i_ka[t], one.branch_i_ka[0], rtol=1e-7, atol=0)
        assert warm.losses_mw[t] == pytest.approx(one.losses_mw[0], rel=1e-8)


def test_warm_start_saves_sweeps_and_restarts_each_run() -> None:
    grid = random_feeder(4, n_bus=80)
    c = compile_grid(grid)
    p, q, gp, gq = _batch(grid, 70, seed=5)
    cold = run_kernel(c, p, q, gp, gq, warm_start=False)
    warm = run_kernel(c, p, q, gp, gq)  # runs of WARM_START_CHUNK snapshots
    assert cold.converged.all() and warm.converged.all()
    assert warm.n_iter.mean() < cold.n_iter.mean() - 1
    first = np.arange(70) % WARM_START_CHUNK == 0  # each run's first snapshot starts flat
    assert first.sum() == 3
    for f in dataclasses.fields(cold):
        a, b = getattr(cold, f.name), getattr(warm, f.name)
        np.testing.assert_array_equal(a[first], b[first], err_msg=f.name)
    np.testing.assert_allclose(warm.vm_pu, cold.vm_pu, rtol=0, atol=1e-9)
    np.testing.assert_allclose(warm.slack_p_mw, cold.slack_p_mw, rtol=1e-9)


def test_solve_into_out() -> None:
    grid = random_feeder(2, n_bus=40)
    p, q = _profiles(grid, 5, seed=3)
    fresh = solve(grid, p, q)
    out = solve(grid, 0.5 * p, q)
    again = solve(grid, p, q, out=out)
    assert again is out
    _assert_results_equal(fresh, out)
    with pytest.raises(GridError, match=r"out.vm_pu must be .* shape \(4, 40\)"):
        solve(grid, p[:4], q[:4], out=out)


def test_angles_far_from_no_load_and_across_180() -> None:
    """The angles by the short series (near each bus's no-load angle) and by atan2 (far from
    it) agree with the nodal reference, in atan2's range, across the +-180 degree cut."""
    for va_slack, sgen_mw, lo, hi in ((0.0, 0.0, -60.0, -8.0), (178.0, 3.0, -180.0, -170.0)):
        grid = Grid(
            name="two-bus",
            bus_vn_kv=np.full(3, 10.0),
            branch_from=[0, 1],
            branch_to=[1, 2],
            branch_r_ohm=[0.5, 0.2],
            branch_x_ohm=[5.0, 1.0],
            slack_bus=0,
            slack_va_degree=va_slack,
            load_bus=[2],
            load_p_mw=[3.0 if sgen_mw == 0 else 0.1],
            load_q_mvar=[0.5],
            sgen_bus=[1],
            sgen_p_mw=[sgen_mw],
            sgen_q_mvar=[0.0],
        )
        r = solve(grid)
        v_ref, _ = reference_solve(grid)
        assert np.abs(r.v_pu[0] - v_ref).max() < 1e-9
        ref_deg = np.degrees(np.angle(v_ref))
        np.testing.assert_allclose(r.va_degree[0], ref_deg, rtol=0, atol=1e-9)
        assert lo < r.va_degree[0][2] < hi  # far from 0 / across the cut from 178 + 3.x


def test_default_q_keeps_power_factor() -> None:
    grid = baran_wu_33()
    p = np.vstack([grid.load_p_mw, 0.5 * grid.load_p_mw])
    r = solve(grid, p)
    r_explicit = solve(grid, p, p * (grid.load_q_mvar / grid.load_p_mw))
    np.testing.assert_allclose(r.vm_pu, r_explicit.vm_pu, rtol=0, atol=1e-14)
    assert r.losses_mw[1] < r.losses_mw[0]


def test_orientation_does_not_matter() -> None:
    grid = random_feeder(5)
    lines = ~grid.branch_is_trafo
    flipped = dataclasses.replace(
        grid,
        branch_from=np.where(lines, grid.branch_to, grid.branch_from),
        branch_to=np.where(lines, grid.branch_from, grid.branch_to),
    )
    a, b = solve(grid), solve(flipped)
    np.testing.assert_allclose(a.vm_pu, b.vm_pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.branch_i_ka, b.branch_i_ka, rtol=1e-9, atol=1e-12)


# --- validation and failure --------------------------------------------------------------------


def _with_branch(grid: Grid, f: int, t: int) -> Grid:
    def add(a: np.ndarray, v: object) -> np.ndarray:
        return np.append(a, np.array([v], dtype=a.dtype))

    return Grid(
        bus_vn_kv=grid.bus_vn_kv,
        branch_from=add(grid.branch_from, f),
        branch_to=add(grid.branch_to, t),
        branch_r_ohm=add(grid.branch_r_ohm, 0.5),
        branch_x_ohm=add(grid.branch_x_ohm, 0.5),
        branch_name=add(grid.branch_name, "tie"),
        slack_bus=grid.slack_bus,
        name=grid.name,
    )


def test_meshed_grid_is_refused() -> None:
    tie_loop = r"meshed: line \d+ .* closes a loop of 10 branches \(.*\b32\b"  # 32: the tie
    with pytest.raises(GridError, match=tie_loop):
        _with_branch(baran_wu_33(), 20, 7).validate()
    with pytest.raises(GridError, match="meshed"):  # a parallel branch is a loop too
        _with_branch(baran_wu_33(), 3, 4).validate()


def test_disconnected_grid_is_refused() -> None:
    g = baran_wu_33()
    keep = np.arange(g.n_branch) != 24  # 5-25 cuts off buses 25..32
    cut = Grid(
        bus_vn_kv=g.bus_vn_kv,
        branch_from=g.branch_from[keep],
        branch_to=g.branch_to[keep],
        branch_r_ohm=g.branch_r_ohm[keep],
        branch_x_ohm=g.branch_x_ohm[keep],
        slack_bus=0,
    )
    with pytest.raises(GridError, match="bus 25 is not connected to the slack bus"):
        solve(cut)


def test_bad_values_are_refused() -> None:
    g = baran_wu_33()
    with pytest.raises(GridError, match="different nominal voltage"):
        dataclasses.replace(g, bus_vn_kv=np.where(np.arange(33) == 5, 0.4, 12.66)).validate()
    with pytest.raises(GridError, match="zero impedance"):
        dataclasses.replace(g, branch_r_ohm=np.zeros(32), branch_x_ohm=np.zeros(32)).validate()
    with pytest.raises(GridError, match="shape"):
        dataclasses.replace(g, load_p_mw=np.zeros(3))
    with pytest.raises(GridError, match="p_mw has shape"):
        solve(g, np.zeros((4, 5)))


def test_a_grid_is_immutable_and_a_changed_copy_solves_anew() -> None:
    """The solver caches each grid's per-unit arrays: a grid cannot be edited in place, and a
    changed copy (Grid.replace) gets its own answer, never the original's."""
    g = baran_wu_33()
    before = solve(g)
    assert compile_grid(g) is compile_grid(g)  # cached per grid object
    for name in ("branch_r_ohm", "branch_from", "load_p_mw", "bus_vn_kv", "branch_name"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(g, name)[0] = getattr(g, name)[1]
    with pytest.raises(ValueError, match="read-only"):
        g.radial.parent_bus[1] = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.branch_r_ohm = np.zeros(g.n_branch)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.slack_vm_pu = 1.05  # type: ignore[misc]
    # a copy holds its own, read-only arrays; the original is unchanged
    r = g.branch_r_ohm.copy()
    r[:5] *= 3.0
    heavier = g.replace(branch_r_ohm=r)
    assert not heavier.branch_r_ohm.flags.writeable
    assert not np.shares_memory(heavier.branch_r_ohm, r)
    after = solve(heavier)
    assert after.vm_pu.min() < before.vm_pu.min() - 1e-3
    assert compile_grid(heavier) is not compile_grid(g)
    np.testing.assert_array_equal(solve(g).vm_pu, before.vm_pu)
    assert solve(g.replace(slack_vm_pu=1.05)).vm_pu[0, 0] == pytest.approx(1.05)
    # copies and pickles stay immutable (a deep copy is the grid itself)
    assert copy.deepcopy(g) is g and copy.copy(g) is g
    back = pickle.loads(pickle.dumps(g))
    assert not back.branch_r_ohm.flags.writeable
    np.testing.assert_array_equal(solve(back).vm_pu, before.vm_pu)


def test_non_convergence_is_reported() -> None:
    g = baran_wu_33()
    p = np.vstack([g.load_p_mw, 20 * g.load_p_mw])  # far beyond the feeder's capability
    with pytest.raises(GridError, match=r"did not converge .* in 1 of 2 snapshots"):
        solve(g, p)
    r = solve(g, p, check=False)
    assert list(r.converged) == [True, False]
    # the snapshot after one that failed starts flat again, not from the failed sweeps
    p3 = np.vstack([p, 0.9 * g.load_p_mw])
    r3 = solve(g, p3, check=False)
    assert list(r3.converged) == [True, False, True]
    alone = solve(g, p3[2])
    np.testing.assert_array_equal(r3.vm_pu[2], alone.vm_pu[0])
    assert r3.n_iter[2] == alone.n_iter[0]


# --- pandapower ------------------------------------------------------------------------------

RADIAL_NETWORKS = [
    "case33bw",
    "create_kerber_landnetz_freileitung_1",
    "create_kerber_vorstadtnetz_kabel_1",
    "create_dickert_lv_network",
    "simple_four_bus_system",  # static generators
    "create_synthetic_voltage_control_lv_network",  # static generators, reverse flow
    "create_cigre_network_lv",  # three transformers, closed bus-bus switches
    "simple_mv_open_ring_net",  # a ring opened by a line switch: a charged open line end
]


@pytest.fixture(scope="module")
def pp():
    pytest.importorskip("pandapower")
    import pandapower

    return pandapower


@functools.cache
def _network(name: str):
    import pandapower.networks as pn

    return getattr(pn, name)()


def network(name: str):
    """A fresh copy of one of pandapower's networks (each is built once per session)."""
    return copy.deepcopy(_network(name))


def _runpp(pp, net) -> None:
    pp.runpp(net, tolerance_mva=1e-10, max_iteration=50, numba=False)


def _compare(pp, net, grid: Grid, r, branch_index: np.ndarray | None = None) -> None:
    """twin's result ``r`` against runpp on ``net``; ``branch_index``: each branch's index in
    pandapower's line or trafo table (default ``grid.branch_id``)."""
    _runpp(pp, net)
    branch_index = grid.branch_id if branch_index is None else branch_index
    real = grid.bus_id >= 0  # not an auxiliary bus
    ids = grid.bus_id[real]
    assert np.abs(r.vm_pu[0][real] - net.res_bus.vm_pu.loc[ids].to_numpy()).max() < 1e-6
    assert np.abs(r.va_degree[0][real] - net.res_bus.va_degree.loc[ids].to_numpy()).max() < 1e-5
    losses = net.res_line.pl_mw.sum() + (net.res_trafo.pl_mw.sum() if len(net.trafo) else 0.0)
    assert r.losses_mw[0] == pytest.approx(losses, rel=1e-6, abs=1e-9)
    assert r.slack_p_mw[0] == pytest.approx(net.res_ext_grid.p_mw.iloc[0], rel=1e-6, abs=1e-9)
    assert r.slack_q_mvar[0] == pytest.approx(net.res_ext_grid.q_mvar.iloc[0], rel=1e-6, abs=1e-9)
    for is_trafo, res in ((False, net.res_line), (True, net.res_trafo)):
        k = grid.branch_is_trafo == is_trafo
        if k.any():
            ref = res.loading_percent.loc[branch_index[k]].to_numpy()
            np.testing.assert_allclose(r.branch_loading_percent[0][k], ref, rtol=1e-6, atol=1e-6)


def test_case33bw_published_figures(pp) -> None:
    grid = from_pandapower(network("case33bw"))
    r = solve(grid)
    assert abs(r.losses_mw[0] - BW33_LOSSES_KW / 1e3) < 1e-4
    assert int(grid.bus_id[np.argmin(r.vm_pu[0])]) == 17
    assert abs(r.vm_pu[0].min() - BW33_MIN_VM_PU) < 1e-4


@pytest.mark.parametrize("name", RADIAL_NETWORKS)
def test_agrees_with_pandapower(pp, name: str) -> None:
    net = network(name)
    grid = from_pandapower(net)
    _compare(pp, net, grid, solve(grid))


@pytest.mark.parametrize("seed", [0, 1])
def test_exported_grid_agrees_with_pandapower(pp, seed: int) -> None:
    grid = random_feeder(seed)
    net = to_pandapower(grid)
    trafo = grid.branch_is_trafo
    rank = np.where(trafo, np.cumsum(trafo) - 1, np.cumsum(~trafo) - 1)  # lines, trafos apart
    _compare(pp, net, grid, solve(grid), rank)
    back = from_pandapower(net)  # the round trip gives the same grid, lines first
    perm = np.concatenate([np.flatnonzero(~trafo), np.flatnonzero(trafo)])
    for name in ("bus_vn_kv", "load_bus", "load_p_mw", "load_q_mvar", "sgen_p_mw"):
        np.testing.assert_allclose(getattr(back, name), getattr(grid, name), rtol=1e-12)
    for name in (
        "branch_from", "branch_to", "branch_is_trafo", "branch_r_ohm", "branch_x_ohm",
        "branch_g_us", "branch_b_us", "branch_vn_from_kv", "branch_vn_to_kv",
        "branch_tap_from_pu", "branch_tap_to_pu", "branch_shift_degree", "branch_sn_mva",
        "branch_max_i_ka", "branch_length_km",
    ):  # fmt: skip
        np.testing.assert_allclose(
            getattr(back, name), getattr(grid, name)[perm], rtol=1e-12, err_msg=name
        )


def test_meshed_pandapower_network_is_refused(pp) -> None:
    net = network("case33bw")
    net.line["in_service"] = True  # close the five tie lines
    with pytest.raises(GridError, match=r"is meshed: line .* closes a loop"):
        from_pandapower(net)


def test_unsupported_pandapower_elements_are_refused(pp) -> None:
    import pandapower.networks as pn

    with pytest.raises(GridError, match="in-service gen"):
        from_pandapower(pn.example_simple())
    net = network("create_kerber_landnetz_freileitung_1")
    pp.create_ext_grid(net, net.bus.index[-1])
    with pytest.raises(GridError, match="2 in-service external grids on different buses"):
        from_pandapower(net)
    net = network("create_kerber_landnetz_freileitung_1")
    net.load["const_z_p_percent"] = 50.0
    with pytest.raises(GridError, match="voltage dependent"):
        from_pandapower(net)


@pytest.mark.parametrize(
    ("table", "column", "says"),
    [
        ("load", "p_mw", "load 3 has no valid p_mw"),
        ("line", "r_ohm_per_km", "line 3 has no valid r_ohm_per_km"),
        ("trafo", "vk_percent", "transformer 0 has no valid vk_percent"),
    ],
)
def test_missing_element_data_is_refused_naming_the_element(pp, table, column, says) -> None:
    """pandapower treats some NaN as 0; a grid with a missing value is refused instead."""
    net = network("create_kerber_landnetz_freileitung_1")
    df = getattr(net, table)
    df.loc[df.index[3 if len(df) > 3 else 0], column] = np.nan
    with pytest.raises(GridError, match=says):
        from_pandapower(net)


def test_a_transformer_with_vk_below_vkr_is_refused(pp) -> None:
    net = network("create_kerber_landnetz_freileitung_1")
    net.trafo.loc[net.trafo.index[0], "vkr_percent"] = net.trafo["vk_percent"].iloc[0] + 1.0
    with pytest.raises(GridError, match=r"has vk_percent .* below vkr_percent"):
        from_pandapower(net)


def test_several_external_grids_on_one_bus_are_one_slack(pp) -> None:
    net = network("create_kerber_landnetz_freileitung_1")
    one = from_pandapower(net)
    slack = net.ext_grid["bus"].iloc[0]
    pp.create_ext_grid(net, slack, vm_pu=net.ext_grid["vm_pu"].iloc[0])
    two = from_pandapower(net)
    assert np.allclose(solve(two).vm_pu, solve(one).vm_pu)
    pp.runpp(net)  # pandapower agrees with the one-slack answer
    assert np.abs(net.res_bus["vm_pu"].to_numpy()[: two.n_bus] - solve(two).vm_pu[0]).max() < 1e-6
    net.ext_grid.loc[net.ext_grid.index[1], "vm_pu"] = 1.05
    with pytest.raises(GridError, match="on one bus at different voltages"):
        from_pandapower(net)


def test_buses_and_loads_cut_off_from_the_slack_are_reported(pp, caplog) -> None:
    net = network("create_kerber_landnetz_freileitung_1")
    grid_all = from_pandapower(net)
    # take out the line feeding the last bus: that bus and its load lose their supply
    last = net.bus.index[-1]
    feeding = net.line.index[(net.line["to_bus"] == last) | (net.line["from_bus"] == last)]
    net.line.loc[feeding, "in_service"] = False
    n_loads = int((net.load["bus"] == last).sum())
    with caplog.at_level("WARNING"):
        grid = from_pandapower(net)
    assert grid.n_bus == grid_all.n_bus - 1
    assert f"1 in-service buses and {n_loads} in-service loads" in caplog.text
    assert "not connected to the external grid" in caplog.text
