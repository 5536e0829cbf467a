"""The backward-forward sweep kernel: radial AC power flow for a batch of load snapshots.

Current summation in per unit (Shirmohammadi et al., IEEE Trans. Power Syst. 3(2), 1988;
Kersting, *Distribution System Modeling and Analysis*, ch. 10), constant-power loads. Buses
are numbered by *position* in breadth-first order from the slack (position 0): every bus comes
after its parent, and the buses at one depth (a *level*) are contiguous, their parents all in
the level above.

Each branch is a series impedance ``z`` behind an ideal transformer ``n`` (complex: ratio and
phase shift) at its from end; its shunts are lumped onto the buses beforehand
(:func:`twin.energy.powerflow.compile_grid`). Whichever way round a branch hangs, with ``j``
the current the subtree below position ``k`` draws, the branch gives
``v[k] = beta[k] * v[parent] - zeta[k] * j[k]`` and passes ``conj(beta[k]) * j[k]`` to its
parent (``beta = 1/n, zeta = z`` when the parent is the from end; ``beta = n, zeta = |n|^2 z``
when it is the to end). The kernel removes the ideal transformers by a change of variables:
with ``a[k]`` the product of the ``beta`` from the slack down to ``k`` (1 at the slack, and on
every bus that no transformer ratio or phase shift separates from it), it sweeps
``u = v / a`` and ``i = conj(a) * j``, in which every branch is a plain impedance:

    u[k] = u[parent] - zeta_u[k] * i[k]        zeta_u = zeta / |a|^2
    i[parent] += i[k]                           (children pass their current up unchanged)
    i[k] = y_u[k] u[k] + conj(s[k] / u[k])      y_u = y |a|^2  (own shunt and loads)

Per snapshot:

1. start: flat (``u = v_slack`` everywhere: no load, each bus at its parent's voltage carried
   through the ideal transformers), or **warm**: the previous snapshot's solution;
2. **backward** (leaves up): each position's current adds to its parent's;
3. **forward** (slack down, level by level): the voltages from the currents, and with each new
   voltage the bus's own current (shunt and loads) for the next backward sweep; the test for
   convergence counts, in the same loop, the buses whose voltage moved by ``tol_pu`` or more;
4. repeat 2-3 until no voltage moves by ``tol_pu`` or more in a sweep
   (``|a| |du| = |dv|``, so the test is on the true voltages); a last backward sweep gives the
   currents of the converged voltages, and from them the branch currents, slack power and
   losses.

Snapshots are solved in *runs* of ``chunk`` consecutive ones, each run on its own (its first
snapshot from a flat start, then each from the previous one's solution when ``warm``; after
one that did not converge, flat again). The runs are independent, so :func:`sweep_parallel`
hands them to Numba's threads and gives bit for bit what :func:`sweep` gives on one thread,
whatever the number of threads. With ``warm`` off, every snapshot starts flat and a batch gives
bit for bit what one call per snapshot gives.

Layout, for speed: real and imaginary parts in separate float64 arrays, by position, the grid's
float values in the rows of one 2-D array (:data:`POS_ROWS`); no allocation inside a run but
its work arrays. The per-bus arithmetic runs in loops over contiguous positions (a level of
the forward sweep, or all buses for the results) that read gathered copies of what they need
from other positions, with unsigned indices (Numba then emits no negative-index wraparound),
so that LLVM vectorises them (AVX2: four buses at a time); gathers, the backward sweep's
running sums and the writes in bus and branch order stay scalar, and so does the forward
sweep over runs of narrow levels (fewer than ``MIN_LEVEL_WIDTH`` buses, see
:mod:`twin.energy.powerflow`), one bus at a time as in a plain sweep. Vectorised or not, every
bus goes through the same IEEE operations in the same order, so the Numba kernels and their
plain-Python versions (``.py_func``) agree to the last bit on any machine that rounds the same
(no fast-math). The bus angles are ``atan2``'s to within an ulp or two, by a short series near
each bus's no-load angle (many times cheaper than ``atan2``) and ``atan2`` beyond it. Pure
functions over arrays; dtypes from :mod:`twin.energy.grid`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)

# atan(x) = x (1 - x^2/3 + x^4/5 - ...): for |x| <= 1/8 the terms to x^17 give it to within
# 1 ulp of the C library's atan (the next term is below 2^-54 x)
_ATAN_X_MAX = 0.125
_DEG = 180.0 / math.pi
_DIVERGED_DV2 = 1e12  # a sweep moving a voltage by 1e6 pu or more (or nan): diverged

# the rows of ``pos_data``, the float64 (len(POS_ROWS), n_bus) array of per-position values
# the kernel reads (row k >= 1 of the parent-branch ones: the branch to position k's parent;
# position 0, the slack, has none), built by twin.energy.powerflow.compile_grid
POS_ROWS = (
    "zeta_r",  # zeta_u (the swept series impedance from the parent), real part
    "zeta_i",  # imaginary part
    "y_r",  # y_u (the swept lumped shunt)
    "y_i",
    "a2",  # |a|^2
    "a_r",  # a (u = v / a)
    "a_i",
    "rot_r",  # exp(-j va_ref): the bus's no-load angle (of a * v_slack) removed
    "rot_i",
    "va_ref_degree",  # va_ref in degrees
    "i_series_r",  # the parent branch's series current from -> to per swept subtree current
    "i_series_i",
    "z_r",  # its series impedance, negated where the parent is its to end
    "z_i",
    "y_from_r",  # its shunt behind the ideal transformer at the from end, likewise signed
    "y_from_i",
    "y_to_r",  # its shunt at the to end, likewise signed
    "y_to_i",
    "r_series",  # its series resistance (losses)
    "g_from",  # its from-end shunt conductance
    "g_to",  # its to-end shunt conductance
    "i_scale_from2",  # (kA per pu current at its from end, behind the transformer)^2
    "i_scale_to2",  # (kA per pu current at its to end)^2
    "loading_from2",  # (100 * i_scale_from / rated current)^2 (nan: unrated)
    "loading_to2",  # (100 * i_scale_to / rated current)^2
)
(
    _ZETA_R,
    _ZETA_I,
    _Y_R,
    _Y_I,
    _A2,
    _A_R,
    _A_I,
    _ROT_R,
    _ROT_I,
    _VA_REF_DEGREE,
    _I_SERIES_R,
    _I_SERIES_I,
    _Z_R,
    _Z_I,
    _Y_FROM_R,
    _Y_FROM_I,
    _Y_TO_R,
    _Y_TO_I,
    _R_SERIES,
    _G_FROM,
    _G_TO,
    _I_SCALE_FROM2,
    _I_SCALE_TO2,
    _LOADING_FROM2,
    _LOADING_TO2,
) = range(len(POS_ROWS))


@njit(cache=True, error_model="numpy")
def _own_current(lo, hi, u_r, u_i, s_r, s_i, y_r, y_i, i_r, i_i):
    """The buses' own currents (lumped shunt and loads) at positions ``lo .. hi - 1``."""
    for k in range(np.uint64(lo), np.uint64(hi)):
        ur = u_r[k]
        ui = u_i[k]
        w = 1.0 / (ur * ur + ui * ui)  # conj(s / u) = conj(s) u / |u|^2
        i_r[k] = y_r[k] * ur - y_i[k] * ui + (s_r[k] * ur + s_i[k] * ui) * w
        i_i[k] = y_r[k] * ui + y_i[k] * ur + (s_r[k] * ui - s_i[k] * ur) * w


@njit(cache=True, error_model="numpy")
def _backward(parent_pos, i_r, i_i):
    """Subtree currents: each position's current (own + children's) added to its parent's."""
    last = len(parent_pos) - 1
    for j in range(last):
        k = np.uint64(last - j)  # n - 1 down to 1
        p = np.uint64(parent_pos[k])
        i_r[p] += i_r[k]
        i_i[p] += i_i[k]


@njit(cache=True, error_model="numpy", inline="always")
def _forward_bus(k, up_r, up_i, zeta_r, zeta_i, y_r, y_i, a2, s_r, s_i, u_r, u_i, i_r, i_i):
    """The forward sweep at position ``k``: its new voltage from its parent's (``up``) and
    its subtree current, then its own current at it. Returns ``|dv|^2``."""
    ir = i_r[k]
    ii = i_i[k]
    zr = zeta_r[k]
    zi = zeta_i[k]
    ur = up_r - (zr * ir - zi * ii)
    ui = up_i - (zr * ii + zi * ir)
    dr = ur - u_r[k]
    di = ui - u_i[k]
    u_r[k] = ur
    u_i[k] = ui
    w = 1.0 / (ur * ur + ui * ui)
    i_r[k] = y_r[k] * ur - y_i[k] * ui + (s_r[k] * ur + s_i[k] * ui) * w
    i_i[k] = y_r[k] * ui + y_i[k] * ur + (s_r[k] * ui - s_i[k] * ur) * w
    return (dr * dr + di * di) * a2[k]


@njit(cache=True, error_model="numpy")
def _forward_level(
    lo, hi, zeta_r, zeta_i, y_r, y_i, a2, s_r, s_i, up_r, up_i, u_r, u_i, i_r, i_i, tol2
):
    """The forward sweep over one level (positions ``lo .. hi - 1``, their parents' voltages
    gathered in ``up``: a loop that vectorises). Returns how many voltages moved by
    ``sqrt(tol2)`` or more, and how many ran away (both counting nan)."""
    n_moved = 0
    n_runaway = 0
    for k in range(np.uint64(lo), np.uint64(hi)):
        d2 = _forward_bus(
            k, up_r[k], up_i[k], zeta_r, zeta_i, y_r, y_i, a2, s_r, s_i, u_r, u_i, i_r, i_i
        )
        n_moved += not d2 < tol2
        n_runaway += not d2 < _DIVERGED_DV2
    return n_moved, n_runaway


@njit(cache=True, error_model="numpy")
def _forward_run(
    lo, hi, parent_pos, zeta_r, zeta_i, y_r, y_i, a2, s_r, s_i, u_r, u_i, i_r, i_i, tol2
):
    """The forward sweep over positions ``lo .. hi - 1``, a run of narrow levels, one bus at a
    time (parents read in place; a bus's parent comes before it). Returns as
    :func:`_forward_level`."""
    n_moved = 0
    n_runaway = 0
    for k in range(np.uint64(lo), np.uint64(hi)):
        p = np.uint64(parent_pos[k])
        d2 = _forward_bus(
            k, u_r[p], u_i[p], zeta_r, zeta_i, y_r, y_i, a2, s_r, s_i, u_r, u_i, i_r, i_i
        )
        n_moved += not d2 < tol2
        n_runaway += not d2 < _DIVERGED_DV2
    return n_moved, n_runaway


@njit(cache=True, error_model="numpy")
def _iterate(
    segment_start,
    segment_is_level,
    parent_pos,
    pos_data,
    v_slack_r,
    v_slack_i,
    s_r,
    s_i,
    flat,
    tol_pu,
    max_iter,
    u_r,
    u_i,
    i_r,
    i_i,
    up_r,
    up_i,
):
    """Solve one snapshot in place (``u``, ``i``: position voltages and currents in the swept
    variables, see the module docstring); the number of sweeps, -1 if it did not converge.
    ``u`` is the start (unless ``flat``); on return ``i`` holds the subtree currents."""
    zeta_r, zeta_i, y_r, y_i = pos_data[_ZETA_R], pos_data[_ZETA_I], pos_data[_Y_R], pos_data[_Y_I]
    a2 = pos_data[_A2]
    n = len(parent_pos)
    tol2 = tol_pu * tol_pu
    if flat:
        u_r[:] = v_slack_r
        u_i[:] = v_slack_i
    u_r[0] = v_slack_r
    u_i[0] = v_slack_i
    _own_current(0, n, u_r, u_i, s_r, s_i, y_r, y_i, i_r, i_i)
    it = 0
    while it < max_iter:
        it += 1
        _backward(parent_pos, i_r, i_i)
        _own_current(0, 1, u_r, u_i, s_r, s_i, y_r, y_i, i_r, i_i)  # the slack's, for the next
        n_moved = 0
        n_runaway = 0
        for seg in range(len(segment_start) - 1):
            lo = np.uint64(segment_start[seg])
            hi = np.uint64(segment_start[seg + 1])
            if segment_is_level[seg]:
                for k in range(lo, hi):  # gather the parents' voltages
                    p = np.uint64(parent_pos[k])
                    up_r[k] = u_r[p]
                    up_i[k] = u_i[p]
                moved, runaway = _forward_level(
                    lo,
                    hi,
                    zeta_r,
                    zeta_i,
                    y_r,
                    y_i,
                    a2,
                    s_r,
                    s_i,
                    up_r,
                    up_i,
                    u_r,
                    u_i,
                    i_r,
                    i_i,
                    tol2,
                )
            else:
                moved, runaway = _forward_run(
                    lo,
                    hi,
                    parent_pos,
                    zeta_r,
                    zeta_i,
                    y_r,
                    y_i,
                    a2,
                    s_r,
                    s_i,
                    u_r,
                    u_i,
                    i_r,
                    i_i,
                    tol2,
                )
            n_moved += moved
            n_runaway += runaway
        if n_moved == 0:
            _backward(parent_pos, i_r, i_i)  # currents of the final voltages
            return it
        if n_runaway > 0:  # diverged (nan or runaway)
            break
    _backward(parent_pos, i_r, i_i)
    return -1


@njit(cache=True, error_model="numpy")
def _bus_results(pos_data, u_r, u_i, v_r, v_i, vm, va):
    """Bus voltages ``v = a u`` by position, their magnitudes and (where the short series
    serves, else nan) angles in degrees."""
    a_r, a_i = pos_data[_A_R], pos_data[_A_I]
    rot_r, rot_i, ref = pos_data[_ROT_R], pos_data[_ROT_I], pos_data[_VA_REF_DEGREE]
    for k in range(np.uint64(0), np.uint64(len(u_r))):
        vr = a_r[k] * u_r[k] - a_i[k] * u_i[k]
        vi = a_r[k] * u_i[k] + a_i[k] * u_r[k]
        v_r[k] = vr
        v_i[k] = vi
        vm[k] = math.sqrt(vr * vr + vi * vi)
        # the angle from the bus's no-load angle: atan of w = v exp(-j ref) by the series
        wr = vr * rot_r[k] - vi * rot_i[k]
        wi = vr * rot_i[k] + vi * rot_r[k]
        x = wi / wr
        y = x * x
        p = 1.0 / 17.0
        p = p * y - 1.0 / 15.0
        p = p * y + 1.0 / 13.0
        p = p * y - 1.0 / 11.0
        p = p * y + 1.0 / 9.0
        p = p * y - 1.0 / 7.0
        p = p * y + 1.0 / 5.0
        p = p * y - 1.0 / 3.0
        p = p * y + 1.0
        d = ref[k] + x * p * _DEG
        d = d - 360.0 if d > 180.0 else d
        d = d + 360.0 if d < -180.0 else d
        va[k] = d if (wr > 0.0) & (abs(wi) <= _ATAN_X_MAX * wr) else np.nan


@njit(cache=True, error_model="numpy")
def _branch_results(pos_data, i_r, i_i, vt_r, vt_i, i_ka, loading, loss):
    """Per position ``k >= 1``, its parent branch's current (kA, the larger end), loading
    (percent) and losses (pu); ``vt`` holds the gathered to-end voltages."""
    i_series_r, i_series_i = pos_data[_I_SERIES_R], pos_data[_I_SERIES_I]
    z_r, z_i = pos_data[_Z_R], pos_data[_Z_I]
    y_from_r, y_from_i = pos_data[_Y_FROM_R], pos_data[_Y_FROM_I]
    y_to_r, y_to_i = pos_data[_Y_TO_R], pos_data[_Y_TO_I]
    r_series, g_from, g_to = pos_data[_R_SERIES], pos_data[_G_FROM], pos_data[_G_TO]
    i_scale_from2, i_scale_to2 = pos_data[_I_SCALE_FROM2], pos_data[_I_SCALE_TO2]
    loading_from2, loading_to2 = pos_data[_LOADING_FROM2], pos_data[_LOADING_TO2]
    for k in range(np.uint64(1), np.uint64(len(i_r))):
        # the series current and, by KVL, the from end's voltage behind its ideal transformer
        sr = i_series_r[k] * i_r[k] - i_series_i[k] * i_i[k]
        si = i_series_r[k] * i_i[k] + i_series_i[k] * i_r[k]
        tr = vt_r[k]
        ti = vt_i[k]
        fr = tr + (z_r[k] * sr - z_i[k] * si)
        fi = ti + (z_r[k] * si + z_i[k] * sr)
        # both ends' currents with their shunts
        ifr = sr + (y_from_r[k] * fr - y_from_i[k] * fi)
        ifi = si + (y_from_r[k] * fi + y_from_i[k] * fr)
        itr = sr - (y_to_r[k] * tr - y_to_i[k] * ti)
        iti = si - (y_to_r[k] * ti + y_to_i[k] * tr)
        if2 = ifr * ifr + ifi * ifi
        it2 = itr * itr + iti * iti
        i_ka[k] = math.sqrt(max(if2 * i_scale_from2[k], it2 * i_scale_to2[k]))
        loading[k] = math.sqrt(max(if2 * loading_from2[k], it2 * loading_to2[k]))
        loss[k] = (
            (sr * sr + si * si) * r_series[k]
            + (fr * fr + fi * fi) * g_from[k]
            + (tr * tr + ti * ti) * g_to[k]
        )


@njit(cache=True, error_model="numpy")
def _sum4(x, start):
    """``x[start:].sum()`` in four interleaved partial sums (a fixed order, four independent
    chains of additions instead of one)."""
    s0 = s1 = s2 = s3 = 0.0
    k = start
    n = len(x)
    while k + 4 <= n:
        s0 += x[k]
        s1 += x[k + 1]
        s2 += x[k + 2]
        s3 += x[k + 3]
        k += 4
    while k < n:
        s0 += x[k]
        k += 1
    return (s0 + s1) + (s2 + s3)


# the arguments of the kernels (sweep, sweep_parallel and _solve_run after its t0, t1):
# the grid's, the snapshots', the solver's settings and the outputs; by position unless said
KERNEL_ARGS = (
    "segment_start",  # int64 (n_segments + 1,) the forward sweep's segments of positions 1..
    "segment_is_level",  # bool (n_segments,) a wide level (vectorised), or a run of narrow ones
    "parent_pos",  # int32 position of the parent bus; -1 at the slack
    "pos_data",  # float64 (len(POS_ROWS), n_bus), see POS_ROWS
    "pos_of_bus",  # int32 by bus: its position
    "pos_of_branch",  # int32 by branch: the position whose parent branch it is
    "v_to_pos",  # int32 position of the parent branch's to bus (itself or its parent)
    "v_slack_r",  # float slack voltage, pu
    "v_slack_i",  # float
    "load_pos",  # int32 position of each load's bus
    "sgen_pos",  # int32 position of each static generator's bus
    "sn_mva",  # float system base power
    "p_mw",  # float64 (n_steps, n_load) load powers (consumption positive)
    "q_mvar",  # float64 (n_steps, n_load)
    "sgen_p_mw",  # float64 (n_steps, n_sgen) generation (positive)
    "sgen_q_mvar",  # float64 (n_steps, n_sgen)
    "tol_pu",  # float: converged when no voltage moves by this much in a sweep
    "max_iter",  # int: sweeps at most
    "warm",  # bool: each snapshot from the previous one's solution (within a run)
    "chunk",  # int: snapshots per run
    "vm_pu",  # out: float64 (n_steps, n_bus)
    "va_degree",  # out: float64 (n_steps, n_bus)
    "branch_i_ka",  # out: float64 (n_steps, n_branch)
    "branch_loading_percent",  # out: float64 (n_steps, n_branch)
    "losses_mw",  # out: float64 (n_steps,)
    "slack_s_mva",  # out: complex128 (n_steps,)
    "n_iter",  # out: int32 (n_steps,) sweeps, -1 where it did not converge in max_iter
)


@njit(cache=True, error_model="numpy")
def _solve_run(
    t0,
    t1,
    segment_start,
    segment_is_level,
    parent_pos,
    pos_data,
    pos_of_bus,
    pos_of_branch,
    v_to_pos,
    v_slack_r,
    v_slack_i,
    load_pos,
    sgen_pos,
    sn_mva,
    p_mw,
    q_mvar,
    sgen_p_mw,
    sgen_q_mvar,
    tol_pu,
    max_iter,
    warm,
    chunk,
    vm_pu,
    va_degree,
    branch_i_ka,
    branch_loading_percent,
    losses_mw,
    slack_s_mva,
    n_iter,
):
    """Solve snapshots ``t0 .. t1 - 1`` in order, each warm-started from the one before when
    ``warm`` (the other arguments: :data:`KERNEL_ARGS`)."""
    n = len(parent_pos)
    work = np.empty((12, n), dtype=np.float64)
    u_r, u_i, i_r, i_i, s_r, s_i = work[0], work[1], work[2], work[3], work[4], work[5]
    up_r, up_i, v_r, v_i, t_r, t_i = work[6], work[7], work[8], work[9], work[10], work[11]
    for t in range(t0, t1):
        # net demand per position, pu
        s_r[:] = 0.0
        s_i[:] = 0.0
        for ld in range(len(load_pos)):
            s_r[load_pos[ld]] += p_mw[t, ld] / sn_mva
            s_i[load_pos[ld]] += q_mvar[t, ld] / sn_mva
        for g in range(len(sgen_pos)):
            s_r[sgen_pos[g]] -= sgen_p_mw[t, g] / sn_mva
            s_i[sgen_pos[g]] -= sgen_q_mvar[t, g] / sn_mva
        flat = t == t0 or not warm or n_iter[t - 1] < 0
        n_iter[t] = _iterate(
            segment_start,
            segment_is_level,
            parent_pos,
            pos_data,
            v_slack_r,
            v_slack_i,
            s_r,
            s_i,
            flat,
            tol_pu,
            max_iter,
            u_r,
            u_i,
            i_r,
            i_i,
            up_r,
            up_i,
        )
        # buses (s is free now: magnitudes and angles by position go there), written in bus
        # order (sequential stores, gathered loads)
        _bus_results(pos_data, u_r, u_i, v_r, v_i, s_r, s_i)
        for b in range(len(pos_of_bus)):
            k = pos_of_bus[b]
            vm_pu[t, b] = s_r[k]
            d = s_i[k]
            if d != d:  # beyond the series (or nan)
                d = math.degrees(math.atan2(v_i[k], v_r[k]))
            va_degree[t, b] = d
        slack_s_mva[t] = complex(v_r[0], v_i[0]) * complex(i_r[0], -i_i[0]) * sn_mva  # a[0] = 1
        # branches (up is free now: currents and loadings, the losses in s)
        for k in range(1, n):
            q = v_to_pos[k]
            t_r[k] = v_r[q]
            t_i[k] = v_i[q]
        _branch_results(pos_data, i_r, i_i, t_r, t_i, up_r, up_i, s_r)
        for br in range(len(pos_of_branch)):
            k = pos_of_branch[br]
            branch_i_ka[t, br] = up_r[k]
            branch_loading_percent[t, br] = up_i[k]
        losses_mw[t] = _sum4(s_r, 1) * sn_mva


@njit(cache=True, nogil=True, error_model="numpy")
def sweep(
    segment_start,
    segment_is_level,
    parent_pos,
    pos_data,
    pos_of_bus,
    pos_of_branch,
    v_to_pos,
    v_slack_r,
    v_slack_i,
    load_pos,
    sgen_pos,
    sn_mva,
    p_mw,
    q_mvar,
    sgen_p_mw,
    sgen_q_mvar,
    tol_pu,
    max_iter,
    warm,
    chunk,
    vm_pu,
    va_degree,
    branch_i_ka,
    branch_loading_percent,
    losses_mw,
    slack_s_mva,
    n_iter,
):
    """Solve ``p_mw.shape[0]`` snapshots on one thread, in runs of ``chunk`` (each warm-started
    within itself when ``warm``); write the outputs. Arguments: :data:`KERNEL_ARGS`."""
    n_steps = p_mw.shape[0]
    n_runs = (n_steps + chunk - 1) // chunk
    for r in range(n_runs):
        _solve_run(
            r * chunk,
            min(n_steps, (r + 1) * chunk),
            segment_start,
            segment_is_level,
            parent_pos,
            pos_data,
            pos_of_bus,
            pos_of_branch,
            v_to_pos,
            v_slack_r,
            v_slack_i,
            load_pos,
            sgen_pos,
            sn_mva,
            p_mw,
            q_mvar,
            sgen_p_mw,
            sgen_q_mvar,
            tol_pu,
            max_iter,
            warm,
            chunk,
            vm_pu,
            va_degree,
            branch_i_ka,
            branch_loading_percent,
            losses_mw,
            slack_s_mva,
            n_iter,
        )


@njit(parallel=True, cache=True, error_model="numpy")
def sweep_parallel(
    segment_start,
    segment_is_level,
    parent_pos,
    pos_data,
    pos_of_bus,
    pos_of_branch,
    v_to_pos,
    v_slack_r,
    v_slack_i,
    load_pos,
    sgen_pos,
    sn_mva,
    p_mw,
    q_mvar,
    sgen_p_mw,
    sgen_q_mvar,
    tol_pu,
    max_iter,
    warm,
    chunk,
    vm_pu,
    va_degree,
    branch_i_ka,
    branch_loading_percent,
    losses_mw,
    slack_s_mva,
    n_iter,
):
    """:func:`sweep` with its runs spread over Numba's threads (the same results bit for bit,
    whatever the number of threads)."""
    n_steps = p_mw.shape[0]
    n_runs = (n_steps + chunk - 1) // chunk
    for r in prange(n_runs):
        _solve_run(
            r * chunk,
            min(n_steps, (r + 1) * chunk),
            segment_start,
            segment_is_level,
            parent_pos,
            pos_data,
            pos_of_bus,
            pos_of_branch,
            v_to_pos,
            v_slack_r,
            v_slack_i,
            load_pos,
            sgen_pos,
            sn_mva,
            p_mw,
            q_mvar,
            sgen_p_mw,
            sgen_q_mvar,
            tol_pu,
            max_iter,
            warm,
            chunk,
            vm_pu,
            va_degree,
            branch_i_ka,
            branch_loading_percent,
            losses_mw,
            slack_s_mva,
            n_iter,
        )
