"""Radial AC power flow: :func:`solve` a :class:`~twin.energy.grid.Grid` for many snapshots.

The branch models are the grid's (see :mod:`twin.energy.grid`, the same as pandapower's
``runpp`` defaults); :func:`compile_grid` turns them into per-unit arrays once per grid, and the
Numba kernels of :mod:`twin.energy.powerflow_kernel` solve a whole batch of load snapshots in
one call: consecutive snapshots warm-started from one another in runs of
:data:`WARM_START_CHUNK`, the runs spread over Numba's threads (``numba.set_num_threads`` or
``NUMBA_NUM_THREADS``; the results do not depend on the number of threads). Results agree with
pandapower's Newton-Raphson to ~1e-9 pu (tests).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike

from twin.energy.grid import COMPLEX, INDEX, REAL, Grid
from twin.energy.powerflow_kernel import POS_ROWS, sweep, sweep_parallel
from twin.errors import GridError

DEFAULT_TOL_PU = 1e-10  # largest voltage change of the last sweep, pu
DEFAULT_MAX_ITER = 100
# snapshots per run: the first from a flat start, each other from the one before; the runs are
# the unit of work handed to threads (the results depend on this number, not on the threads)
WARM_START_CHUNK = 30
MIN_LEVEL_WIDTH = 16  # buses in a level for a vectorised forward sweep over it


@dataclass(frozen=True, eq=False)
class CompiledGrid:
    """Per-unit arrays of a grid: by position (buses in BFS order from the slack, see
    :mod:`twin.energy.powerflow_kernel`) or by branch, and ``kernel_args``, the grid's
    arguments of the sweep kernels (:data:`~twin.energy.powerflow_kernel.KERNEL_ARGS`)."""

    # by position
    bus_of_pos: np.ndarray  # int32 the bus at each position (the BFS order)
    parent_pos: np.ndarray  # int32 position of the parent bus; -1 at the slack
    level_start: np.ndarray  # int64 first position of each depth (level), then n_bus
    branch_of_pos: np.ndarray  # int32 the parent branch; -1 at the slack
    parent_is_from: np.ndarray  # bool the parent is the parent branch's from end
    beta: np.ndarray  # complex128 voltage carried from the parent (1/n or n)
    zeta: np.ndarray  # complex128 impedance seen from the parent (z or |n|^2 z)
    y_pos: np.ndarray  # complex128 branch shunts lumped onto the buses
    a: np.ndarray  # complex128 product of beta from the slack down (the swept u = v / a)
    load_pos: np.ndarray  # int32 position of each load's bus
    sgen_pos: np.ndarray  # int32 position of each sgen's bus
    # by branch
    z_pu: np.ndarray  # complex128 series impedance on the to bus's base
    n_tap: np.ndarray  # complex128 ideal transformer at the from end: ratio * exp(j shift)
    y_from_pu: np.ndarray  # complex128 shunt behind the ideal transformer at the from end
    y_to_pu: np.ndarray  # complex128 shunt at the to end
    i_scale_from_ka: np.ndarray  # float64 kA per pu current behind the from end's transformer
    i_scale_to_ka: np.ndarray  # float64 kA per pu current at the to end
    inv_rated_from_ka: np.ndarray  # float64 1 / rated current at the from end (nan: unrated)
    inv_rated_to_ka: np.ndarray  # float64 1 / rated current at the to end
    v_slack: complex
    sn_mva: float
    kernel_args: tuple  # the grid's arguments of the kernels (KERNEL_ARGS up to sn_mva)


_compiled: weakref.WeakKeyDictionary[Grid, CompiledGrid] = weakref.WeakKeyDictionary()


def compile_grid(grid: Grid) -> CompiledGrid:
    """The grid's per-unit arrays (validates the grid; cached per grid object: a
    :class:`~twin.energy.grid.Grid` is immutable, so the cache cannot go stale)."""
    out = _compiled.get(grid)
    if out is None:
        out = _compile(grid)
        _compiled[grid] = out
    return out


def _compile(grid: Grid) -> CompiledGrid:
    radial = grid.radial  # validates
    sn = grid.sn_mva
    fr, to, trafo = grid.branch_from, grid.branch_to, grid.branch_is_trafo
    vn_from, vn_to = grid.bus_vn_kv[fr], grid.bus_vn_kv[to]
    z_base_to = vn_to**2 / sn  # ohm
    tap_to2 = np.where(trafo, grid.branch_tap_to_pu**2, 1.0)
    # series impedance and shunt (a transformer's both at its tapped LV winding voltage)
    z = (grid.branch_r_ohm + 1j * grid.branch_x_ohm) * tap_to2 / z_base_to
    y = (grid.branch_g_us + 1j * grid.branch_b_us) * 1e-6 / tap_to2 * z_base_to
    # lines: pi section, half the shunt at each end
    y_from = y / 2
    y_to = y / 2
    # transformers: T equivalent (half the impedance each side of the magnetising branch)
    # to pi, as pandapower's build_branch._wye_delta
    t = trafo & (y != 0)
    if t.any():
        za = zb = z[t] / 2
        zc = 1 / y[t]
        zsum = za * zb + za * zc + zb * zc
        z[t] = zsum / zc
        y_from[t] = zb / zsum  # 1 / (zsum / zb)
        y_to[t] = za / zsum
    ratio = np.where(
        trafo,
        (grid.branch_vn_from_kv * grid.branch_tap_from_pu)
        / (grid.branch_vn_to_kv * grid.branch_tap_to_pu)
        / (vn_from / vn_to),
        1.0,
    )
    n_tap = ratio * np.exp(1j * np.radians(grid.branch_shift_degree))
    y_bus = np.zeros(grid.n_bus, dtype=COMPLEX)
    np.add.at(y_bus, fr, y_from / np.abs(n_tap) ** 2)
    np.add.at(y_bus, to, y_to)
    i_base = sn / (math.sqrt(3) * grid.bus_vn_kv)  # kA
    # ratings: a line's current; a transformer's rated current of each winding
    sq3 = math.sqrt(3)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_rated_from = 1 / np.where(
            trafo, grid.branch_sn_mva / (sq3 * grid.branch_vn_from_kv), grid.branch_max_i_ka
        )
        inv_rated_to = 1 / np.where(
            trafo, grid.branch_sn_mva / (sq3 * grid.branch_vn_to_kv), grid.branch_max_i_ka
        )
    # by position
    order = radial.order
    pos_of_bus = np.empty(grid.n_bus, dtype=INDEX)
    pos_of_bus[order] = np.arange(grid.n_bus, dtype=INDEX)
    parent_pos = np.full(grid.n_bus, -1, dtype=INDEX)
    parent_pos[1:] = pos_of_bus[radial.parent_bus[order[1:]]]
    branch_of_pos = radial.parent_branch[order]
    is_from = radial.parent_is_from[order]
    beta = np.zeros(grid.n_bus, dtype=COMPLEX)
    zeta = np.zeros(grid.n_bus, dtype=COMPLEX)
    nb_ = n_tap[branch_of_pos[1:]]
    zb_ = z[branch_of_pos[1:]]
    beta[1:] = np.where(is_from[1:], 1 / nb_, nb_)
    zeta[1:] = np.where(is_from[1:], zb_, np.abs(nb_) ** 2 * zb_)
    v_slack = grid.slack_vm_pu * np.exp(1j * np.radians(grid.slack_va_degree))
    y_pos = y_bus[order]
    # levels: BFS order puts the buses of one depth together, their parents all in the level
    # above; a: the ideal transformers' product from the slack down, level by level
    depth = radial.depth[order]
    level_start = np.concatenate([[0], np.flatnonzero(np.diff(depth)) + 1, [grid.n_bus]])
    a = np.ones(grid.n_bus, dtype=COMPLEX)
    for lo, hi in itertools.pairwise(level_start[1:]):
        a[lo:hi] = beta[lo:hi] * a[parent_pos[lo:hi]]
    a2 = a.real**2 + a.imag**2
    va_ref = np.angle(a * v_slack)  # each bus's angle at no load
    # the parent branch's results, by position (position 0, the slack, has none: zeros)
    br = branch_of_pos[1:]
    sign = np.where(is_from[1:], 1.0, -1.0)

    def by_pos(x: np.ndarray) -> np.ndarray:
        out = np.zeros(grid.n_bus, dtype=x.dtype)
        out[1:] = x
        return out

    v_to_pos = by_pos(np.where(is_from[1:], np.arange(1, grid.n_bus), parent_pos[1:]))
    i_series = by_pos(np.where(is_from[1:], 1.0, np.conj(n_tap[br])) / np.conj(a[1:]))
    i_scale_from = i_base[fr] / np.abs(n_tap)
    i_scale_to = i_base[to]
    zeta_u = zeta / a2
    y_u = y_pos * a2
    rot = np.exp(-1j * va_ref)
    z_s, yf_s, yt_s = by_pos(sign * z[br]), by_pos(sign * y_from[br]), by_pos(sign * y_to[br])
    pos_of_branch = np.empty(grid.n_branch, dtype=INDEX)
    pos_of_branch[branch_of_pos[1:]] = np.arange(1, grid.n_bus, dtype=INDEX)
    rows = {
        "zeta_r": zeta_u.real,
        "zeta_i": zeta_u.imag,
        "y_r": y_u.real,
        "y_i": y_u.imag,
        "a2": a2,
        "a_r": a.real,
        "a_i": a.imag,
        "rot_r": rot.real,
        "rot_i": rot.imag,
        "va_ref_degree": np.degrees(va_ref),
        "i_series_r": i_series.real,
        "i_series_i": i_series.imag,
        "z_r": z_s.real,
        "z_i": z_s.imag,
        "y_from_r": yf_s.real,
        "y_from_i": yf_s.imag,
        "y_to_r": yt_s.real,
        "y_to_i": yt_s.imag,
        "r_series": by_pos(z[br].real),
        "g_from": by_pos(y_from[br].real),
        "g_to": by_pos(y_to[br].real),
        "i_scale_from2": by_pos(i_scale_from[br] ** 2),
        "i_scale_to2": by_pos(i_scale_to[br] ** 2),
        "loading_from2": by_pos((100 * i_scale_from[br] * inv_rated_from[br]) ** 2),
        "loading_to2": by_pos((100 * i_scale_to[br] * inv_rated_to[br]) ** 2),
    }
    assert tuple(rows) == POS_ROWS
    pos_data = np.ascontiguousarray(np.vstack(list(rows.values())), dtype=REAL)

    def arr(x: np.ndarray, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=dtype)

    # the grid's arguments of the kernels, KERNEL_ARGS in order
    kernel_args = (
        *_segments(level_start),
        parent_pos,
        pos_data,
        arr(pos_of_bus, INDEX),
        pos_of_branch,
        arr(v_to_pos, INDEX),
        float(v_slack.real),
        float(v_slack.imag),
        arr(pos_of_bus[grid.load_bus], INDEX),
        arr(pos_of_bus[grid.sgen_bus], INDEX),
        float(sn),
    )
    return CompiledGrid(
        bus_of_pos=arr(order, INDEX),
        parent_pos=parent_pos,
        level_start=arr(level_start, np.int64),
        branch_of_pos=arr(branch_of_pos, INDEX),
        parent_is_from=arr(is_from, np.bool_),
        beta=beta,
        zeta=zeta,
        y_pos=arr(y_pos, COMPLEX),
        a=a,
        load_pos=kernel_args[9],
        sgen_pos=kernel_args[10],
        z_pu=arr(z, COMPLEX),
        n_tap=arr(n_tap, COMPLEX),
        y_from_pu=arr(y_from, COMPLEX),
        y_to_pu=arr(y_to, COMPLEX),
        i_scale_from_ka=arr(i_scale_from, REAL),
        i_scale_to_ka=arr(i_scale_to, REAL),
        inv_rated_from_ka=arr(inv_rated_from, REAL),
        inv_rated_to_ka=arr(inv_rated_to, REAL),
        v_slack=complex(v_slack),
        sn_mva=sn,
        kernel_args=kernel_args,
    )


def _segments(level_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forward sweep's segments of positions 1.. (the slack's 0 has none): each level of
    at least MIN_LEVEL_WIDTH buses on its own (a vectorised loop), each run of narrower levels
    as one (one bus at a time: a vectorised loop would not pay its set-up over a few)."""
    width = np.diff(level_start)[1:]
    wide = width >= MIN_LEVEL_WIDTH
    # a segment starts at each wide level, and at each narrow level after a wide one
    starts = wide | np.concatenate([[True], wide[:-1]])
    segment_start = np.concatenate([level_start[1:-1][starts], level_start[-1:]])
    return np.ascontiguousarray(segment_start, dtype=np.int64), np.ascontiguousarray(wide[starts])


@dataclass(eq=False)
class PowerFlowResult:
    """Power-flow results of ``n_steps`` snapshots (first axis) of one grid."""

    vm_pu: np.ndarray  # float64 (n_steps, n_bus) voltage magnitude
    va_degree: np.ndarray  # float64 (n_steps, n_bus) voltage angle
    branch_i_ka: np.ndarray  # float64 (n_steps, n_branch) current, the larger of the two ends
    branch_loading_percent: np.ndarray  # float64 (n_steps, n_branch) of the rating (nan: none)
    losses_mw: np.ndarray  # float64 (n_steps,) all branches, series and shunt
    slack_p_mw: np.ndarray  # float64 (n_steps,) power drawn from the slack (feeding grid)
    slack_q_mvar: np.ndarray  # float64 (n_steps,)
    n_iter: np.ndarray  # int32 (n_steps,) sweeps to converge; -1 where it did not

    @property
    def n_steps(self) -> int:
        return self.vm_pu.shape[0]

    @property
    def converged(self) -> np.ndarray:
        """bool (n_steps,): whether each snapshot converged."""
        return self.n_iter >= 0

    @property
    def v_pu(self) -> np.ndarray:
        """complex128 (n_steps, n_bus) bus voltages."""
        return self.vm_pu * np.exp(1j * np.radians(self.va_degree))


def _snapshots(x: ArrayLike | None, default: np.ndarray, n_steps: int, what: str) -> np.ndarray:
    """(n_steps, n) C-contiguous float64 from a (n_steps, n) array, or a (n,) array or the
    default repeated in every snapshot."""
    a = default if x is None else np.asarray(x, dtype=REAL)
    if a.ndim == 1:
        a = np.broadcast_to(a, (n_steps, len(a)))
    if a.shape != (n_steps, len(default)):
        raise GridError(f"{what} has shape {a.shape}, expected ({n_steps}, {len(default)})")
    if x is not None and not np.isfinite(a).all():
        raise GridError(f"{what} holds values that are not finite")
    return np.ascontiguousarray(a, dtype=REAL)


def solve(
    grid: Grid,
    p_mw: ArrayLike | None = None,
    q_mvar: ArrayLike | None = None,
    *,
    sgen_p_mw: ArrayLike | None = None,
    sgen_q_mvar: ArrayLike | None = None,
    tol_pu: float = DEFAULT_TOL_PU,
    max_iter: int = DEFAULT_MAX_ITER,
    check: bool = True,
    warm_start: bool = True,
    parallel: bool | None = None,
    out: PowerFlowResult | None = None,
) -> PowerFlowResult:
    """Solve the grid's power flow for one or many load snapshots in one kernel call.

    ``p_mw`` / ``q_mvar``: load powers, shape (n_steps, n_load), or (n_load,) for the same in
    every snapshot; by default the grid's ``load_p_mw`` / ``load_q_mvar``. If only ``p_mw`` is
    given, each load keeps the grid's power factor (``q = p * load_q_mvar / load_p_mw``; a load
    whose grid ``load_p_mw`` is 0 keeps its ``load_q_mvar``). ``sgen_p_mw`` / ``sgen_q_mvar``
    likewise, without the power-factor rule. Converged when no bus voltage moves by ``tol_pu``
    or more in a sweep; with ``check``, a snapshot that does not converge in ``max_iter``
    sweeps raises :class:`~twin.errors.GridError`, otherwise its ``n_iter`` is -1.

    ``warm_start``: each snapshot starts from the previous one's solution (within runs of
    :data:`WARM_START_CHUNK` snapshots; the first of a run, and any after one that did not
    converge, start flat): fewer sweeps when loads change little from one snapshot to the
    next. The answer is the same to within the tolerance (each converged snapshot is within
    about ``tol_pu`` of the exact solution either way), not to the bit; with
    ``warm_start=False`` every snapshot starts flat, and a batch gives bit for bit what one
    call per snapshot gives. ``out``: a result of the same grid and number of snapshots to
    overwrite and return instead of allocating new arrays (saves the page faults of a large
    batch when solving many). ``parallel``: False for the serial sweep (it releases the GIL: safe
    on a thread of its own beside other Numba work); None chooses as :func:`run_kernel` does.
    Either gives the same results bit for bit.
    """
    c = compile_grid(grid)
    if p_mw is None and q_mvar is None and sgen_p_mw is None and sgen_q_mvar is None:
        # the grid's own snapshot: (1, n) views
        p, q = grid.load_p_mw[np.newaxis, :], grid.load_q_mvar[np.newaxis, :]
        gp, gq = grid.sgen_p_mw[np.newaxis, :], grid.sgen_q_mvar[np.newaxis, :]
    else:
        given = (p_mw, q_mvar, sgen_p_mw, sgen_q_mvar)
        n_steps = next((np.shape(x)[0] for x in given if x is not None and np.ndim(x) == 2), 1)
        p = _snapshots(p_mw, grid.load_p_mw, n_steps, "p_mw")
        if q_mvar is None and p_mw is not None:  # each load keeps its power factor
            p0, q0 = grid.load_p_mw, grid.load_q_mvar
            q = p * np.divide(q0, p0, out=np.zeros(len(p0)), where=p0 != 0)
            q[:, p0 == 0] = q0[p0 == 0]
        else:
            q = _snapshots(q_mvar, grid.load_q_mvar, n_steps, "q_mvar")
        gp = _snapshots(sgen_p_mw, grid.sgen_p_mw, n_steps, "sgen_p_mw")
        gq = _snapshots(sgen_q_mvar, grid.sgen_q_mvar, n_steps, "sgen_q_mvar")
    result = run_kernel(
        c,
        p,
        q,
        gp,
        gq,
        tol_pu=tol_pu,
        max_iter=max_iter,
        warm_start=warm_start,
        out=out,
        kernel=sweep if parallel is False else None,
    )
    n_iter = result.n_iter
    if check and (n_iter < 0).any():
        bad = np.flatnonzero(n_iter < 0)
        raise GridError(
            f"grid {grid.name!r}: the power flow did not converge in {max_iter} sweeps in "
            f"{bad.size} of {len(n_iter)} snapshots (first: {bad[0]}); the loads may be beyond "
            "what the grid can carry (voltage collapse)"
        )
    return result


def run_kernel(
    c: CompiledGrid,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    sgen_p_mw: np.ndarray,
    sgen_q_mvar: np.ndarray,
    *,
    tol_pu: float = DEFAULT_TOL_PU,
    max_iter: int = DEFAULT_MAX_ITER,
    warm_start: bool = True,
    chunk: int = WARM_START_CHUNK,
    kernel: Callable | None = None,
    out: PowerFlowResult | None = None,
) -> PowerFlowResult:
    """Call the sweep ``kernel`` on C-contiguous float64 (n_steps, n) power arrays (no checks
    on them; ``out`` is checked).

    By default :func:`~twin.energy.powerflow_kernel.sweep_parallel` when there is more than
    one run of ``chunk`` snapshots and Numba has more than one thread, else
    :func:`~twin.energy.powerflow_kernel.sweep` (the same results bit for bit); ``kernel=``
    another function with their arguments, e.g. ``sweep.py_func``."""
    n_steps = p_mw.shape[0]
    chunk = max(1, int(chunk))
    if kernel is None:
        parallel = n_steps > chunk and numba.get_num_threads() > 1
        kernel = sweep_parallel if parallel else sweep
    nb, nl = len(c.bus_of_pos), len(c.z_pu)
    if out is None:
        out = PowerFlowResult(
            vm_pu=np.empty((n_steps, nb), dtype=REAL),
            va_degree=np.empty((n_steps, nb), dtype=REAL),
            branch_i_ka=np.empty((n_steps, nl), dtype=REAL),
            branch_loading_percent=np.empty((n_steps, nl), dtype=REAL),
            losses_mw=np.empty(n_steps, dtype=REAL),
            slack_p_mw=np.empty(n_steps, dtype=REAL),
            slack_q_mvar=np.empty(n_steps, dtype=REAL),
            n_iter=np.empty(n_steps, dtype=INDEX),
        )
    else:
        _check_out(out, n_steps, nb, nl)
    s_slack = np.empty(n_steps, dtype=COMPLEX)
    args = (
        *c.kernel_args,
        p_mw,
        q_mvar,
        sgen_p_mw,
        sgen_q_mvar,
        float(tol_pu),
        int(max_iter),
        bool(warm_start),
        chunk,
        out.vm_pu,
        out.va_degree,
        out.branch_i_ka,
        out.branch_loading_percent,
        out.losses_mw,
        s_slack,
        out.n_iter,
    )
    if kernel is sweep_parallel:
        with numba.parallel_chunksize(1):  # runs differ in sweeps: one at a time to a thread
            kernel(*args)
    else:
        kernel(*args)
    out.slack_p_mw[:] = s_slack.real
    out.slack_q_mvar[:] = s_slack.imag
    return out


def _check_out(out: PowerFlowResult, n_steps: int, nb: int, nl: int) -> None:
    shapes = {
        "vm_pu": (n_steps, nb),
        "va_degree": (n_steps, nb),
        "branch_i_ka": (n_steps, nl),
        "branch_loading_percent": (n_steps, nl),
        "losses_mw": (n_steps,),
        "slack_p_mw": (n_steps,),
        "slack_q_mvar": (n_steps,),
        "n_iter": (n_steps,),
    }
    for name, shape in shapes.items():
        a = getattr(out, name)
        dtype = INDEX if name == "n_iter" else REAL
        if not (
            isinstance(a, np.ndarray)
            and a.shape == shape
            and a.dtype == dtype
            and a.flags.c_contiguous
            and a.flags.writeable
        ):
            raise GridError(
                f"out.{name} must be a writeable C-contiguous {np.dtype(dtype)} array of shape "
                f"{shape}, not {getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}"
            )
