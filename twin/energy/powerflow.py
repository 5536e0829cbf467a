"""Radial AC power flow: :func:`solve` a :class:`~twin.energy.grid.Grid` for many snapshots.

The branch models are the grid's (see :mod:`twin.energy.grid`, the same as pandapower's
``runpp`` defaults); :func:`compile_grid` turns them into per-unit arrays once per grid, and the
Numba kernel :func:`twin.energy.powerflow_kernel.sweep` solves a whole batch of load
snapshots in one call. Results agree with pandapower's Newton-Raphson to ~1e-9 pu (tests).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from twin.energy.grid import COMPLEX, INDEX, REAL, Grid
from twin.energy.powerflow_kernel import sweep
from twin.errors import GridError

DEFAULT_TOL_PU = 1e-10  # largest voltage change of the last sweep, pu
DEFAULT_MAX_ITER = 100


@dataclass(frozen=True, eq=False)
class CompiledGrid:
    """Per-unit arrays of a grid as the sweep kernel reads them: by position (buses in BFS
    order from the slack, see :mod:`twin.energy.powerflow_kernel`) or by branch."""

    # by position
    bus_of_pos: np.ndarray  # int32 the bus at each position (the BFS order)
    parent_pos: np.ndarray  # int32 position of the parent bus; -1 at the slack
    branch_of_pos: np.ndarray  # int32 the parent branch; -1 at the slack
    parent_is_from: np.ndarray  # bool the parent is the parent branch's from end
    beta: np.ndarray  # complex128 voltage carried from the parent (1/n or n)
    zeta: np.ndarray  # complex128 impedance seen from the parent (z or |n|^2 z)
    y_pos: np.ndarray  # complex128 branch shunts lumped onto the buses
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


_compiled: weakref.WeakKeyDictionary[Grid, CompiledGrid] = weakref.WeakKeyDictionary()


def compile_grid(grid: Grid) -> CompiledGrid:
    """The grid's per-unit arrays (validates the grid; cached per grid object)."""
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

    def arr(a: np.ndarray, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dtype)

    return CompiledGrid(
        bus_of_pos=arr(order, INDEX),
        parent_pos=parent_pos,
        branch_of_pos=arr(branch_of_pos, INDEX),
        parent_is_from=arr(is_from, np.bool_),
        beta=beta,
        zeta=zeta,
        y_pos=arr(y_bus[order], COMPLEX),
        load_pos=arr(pos_of_bus[grid.load_bus], INDEX),
        sgen_pos=arr(pos_of_bus[grid.sgen_bus], INDEX),
        z_pu=arr(z, COMPLEX),
        n_tap=arr(n_tap, COMPLEX),
        y_from_pu=arr(y_from, COMPLEX),
        y_to_pu=arr(y_to, COMPLEX),
        i_scale_from_ka=arr(i_base[fr] / np.abs(n_tap), REAL),
        i_scale_to_ka=arr(i_base[to], REAL),
        inv_rated_from_ka=arr(inv_rated_from, REAL),
        inv_rated_to_ka=arr(inv_rated_to, REAL),
        v_slack=complex(v_slack),
        sn_mva=sn,
    )


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
) -> PowerFlowResult:
    """Solve the grid's power flow for one or many load snapshots in one kernel call.

    ``p_mw`` / ``q_mvar``: load powers, shape (n_steps, n_load), or (n_load,) for the same in
    every snapshot; by default the grid's ``load_p_mw`` / ``load_q_mvar``. If only ``p_mw`` is
    given, each load keeps the grid's power factor (``q = p * load_q_mvar / load_p_mw``; a load
    whose grid ``load_p_mw`` is 0 keeps its ``load_q_mvar``). ``sgen_p_mw`` / ``sgen_q_mvar``
    likewise, without the power-factor rule. Converged when no bus voltage moves by ``tol_pu``
    or more in a sweep; with ``check``, a snapshot that does not converge in ``max_iter``
    sweeps raises :class:`~twin.errors.GridError`, otherwise its ``n_iter`` is -1.
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
    result = run_kernel(c, p, q, gp, gq, tol_pu=tol_pu, max_iter=max_iter)
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
    kernel: Callable = sweep,
) -> PowerFlowResult:
    """Call the sweep ``kernel`` on C-contiguous float64 (n_steps, n) power arrays (no checks;
    ``kernel=sweep.py_func`` runs the same code as plain Python)."""
    n_steps = p_mw.shape[0]
    nb, nl = len(c.bus_of_pos), len(c.z_pu)
    vm = np.empty((n_steps, nb), dtype=REAL)
    va = np.empty((n_steps, nb), dtype=REAL)
    i_ka = np.empty((n_steps, nl), dtype=REAL)
    loading = np.empty((n_steps, nl), dtype=REAL)
    losses = np.empty(n_steps, dtype=REAL)
    s_slack = np.empty(n_steps, dtype=COMPLEX)
    n_iter = np.empty(n_steps, dtype=INDEX)
    kernel(
        c.parent_pos,
        c.beta,
        c.zeta,
        c.y_pos,
        c.v_slack,
        c.load_pos,
        p_mw,
        q_mvar,
        c.sgen_pos,
        sgen_p_mw,
        sgen_q_mvar,
        c.sn_mva,
        float(tol_pu),
        int(max_iter),
        c.bus_of_pos,
        c.branch_of_pos,
        c.parent_is_from,
        c.z_pu,
        c.n_tap,
        c.y_from_pu,
        c.y_to_pu,
        c.i_scale_from_ka,
        c.i_scale_to_ka,
        c.inv_rated_from_ka,
        c.inv_rated_to_ka,
        vm,
        va,
        i_ka,
        loading,
        losses,
        s_slack,
        n_iter,
    )
    return PowerFlowResult(
        vm_pu=vm,
        va_degree=va,
        branch_i_ka=i_ka,
        branch_loading_percent=loading,
        losses_mw=losses,
        slack_p_mw=s_slack.real.copy(),
        slack_q_mvar=s_slack.imag.copy(),
        n_iter=n_iter,
    )
