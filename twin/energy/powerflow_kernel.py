"""The backward-forward sweep kernel: radial AC power flow for a batch of load snapshots.

Current summation in complex per unit (Shirmohammadi et al., IEEE Trans. Power Syst. 3(2),
1988; Kersting, *Distribution System Modeling and Analysis*, ch. 10), constant-power loads.
Buses are numbered by *position* in breadth-first order from the slack (position 0), so every
bus comes after its parent and the sweeps run over contiguous arrays. Each branch is a series
impedance ``z`` behind an ideal transformer ``n`` (complex: ratio and phase shift) at its from
end; its shunts are lumped onto the buses beforehand (:func:`twin.energy.powerflow.compile_grid`).
Whichever way round a branch hangs, with ``j`` the current the subtree below position ``k``
draws, the branch gives ``v[k] = beta[k] * v[parent] - zeta[k] * j`` and passes
``conj(beta[k]) * j`` to its parent (``beta = 1/n, zeta = z`` when the parent is the from end;
``beta = n, zeta = |n|^2 z`` when it is the to end). Per snapshot:

1. start flat: each bus at its parent's voltage carried through the ideal transformers;
2. **backward** (leaves up): ``j[k]`` = its loads' ``conj(s / v)`` + its shunt's ``y v`` +
   what its children pass up;
3. **forward** (slack down): the voltages from ``j``;
4. repeat until no voltage moves by ``tol_pu`` or more; a last backward sweep gives the
   currents, slack power and losses of the converged voltages.

Every snapshot starts flat and is solved on its own, so a batch gives bit for bit what one call
per snapshot gives. Pure functions over arrays; dtypes from :mod:`twin.energy.grid`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _backward(parent_pos, beta, y_pos, s_pos, v, j):
    """Subtree currents ``j`` of the voltages ``v``."""
    n = len(v)
    for k in range(n):
        vk = v[k]
        j[k] = y_pos[k] * vk
        s = s_pos[k]
        if s != 0:  # conj(s / v) = conj(s) v / |v|^2
            j[k] += np.conj(s) * vk / (vk.real * vk.real + vk.imag * vk.imag)
    for k in range(n - 1, 0, -1):
        j[parent_pos[k]] += np.conj(beta[k]) * j[k]


@njit(cache=True)
def _iterate(parent_pos, beta, zeta, y_pos, v_slack, s_pos, tol_pu, max_iter, v, j):
    """Solve one snapshot in place (``v``, ``j``); the number of sweeps, -1 if not converged."""
    n = len(v)
    tol2 = tol_pu * tol_pu
    v[0] = v_slack
    for k in range(1, n):  # flat start
        v[k] = beta[k] * v[parent_pos[k]]
    it = 0
    while it < max_iter:
        it += 1
        _backward(parent_pos, beta, y_pos, s_pos, v, j)
        dv2 = 0.0
        for k in range(1, n):
            vk = beta[k] * v[parent_pos[k]] - zeta[k] * j[k]
            d = vk - v[k]
            d2 = d.real * d.real + d.imag * d.imag
            if not d2 <= dv2:  # also catches nan
                dv2 = d2
            v[k] = vk
        if dv2 < tol2:
            _backward(parent_pos, beta, y_pos, s_pos, v, j)  # currents of the final voltages
            return it
        if not dv2 < 1e12:  # diverged (nan or runaway)
            break
    _backward(parent_pos, beta, y_pos, s_pos, v, j)
    return -1


@njit(cache=True)
def sweep(
    parent_pos,
    beta,
    zeta,
    y_pos,
    v_slack,
    load_pos,
    load_p_mw,
    load_q_mvar,
    sgen_pos,
    sgen_p_mw,
    sgen_q_mvar,
    sn_mva,
    tol_pu,
    max_iter,
    bus_of_pos,
    branch_of_pos,
    parent_is_from,
    z_pu,
    n_tap,
    y_from_pu,
    y_to_pu,
    i_scale_from_ka,
    i_scale_to_ka,
    inv_rated_from_ka,
    inv_rated_to_ka,
    vm_pu,
    va_degree,
    branch_i_ka,
    branch_loading_percent,
    losses_mw,
    slack_s_mva,
    n_iter,
):
    """Solve ``load_p_mw.shape[0]`` snapshots; write the outputs (the last seven arguments).

    Per position (BFS order, slack first): ``parent_pos``, the branch coefficients ``beta`` and
    ``zeta`` (see the module docstring), the lumped shunt ``y_pos`` (per unit), the bus there
    (``bus_of_pos``), its parent branch (``branch_of_pos``) and whether the parent is that
    branch's from end. Loads and static generators sit at ``load_pos`` / ``sgen_pos`` with
    (n_steps, n) powers in MW / Mvar. Per branch, for the results: ``z_pu``, ``n_tap``, the
    unlumped shunts, the current bases of both ends (kA per pu, the from end's over ``|n|``)
    and the inverse rated currents (1/kA; nan: unrated, a nan loading). ``n_iter`` is the
    number of sweeps, or -1 where a snapshot did not converge in ``max_iter`` (its results are
    those of the last sweep).
    """
    n_steps = load_p_mw.shape[0]
    n = len(parent_pos)
    v = np.empty(n, dtype=np.complex128)
    j = np.empty(n, dtype=np.complex128)
    s_pos = np.empty(n, dtype=np.complex128)  # net demand per position, pu
    for t in range(n_steps):
        s_pos[:] = 0.0
        for ld in range(load_pos.shape[0]):
            s_pos[load_pos[ld]] += complex(load_p_mw[t, ld], load_q_mvar[t, ld]) / sn_mva
        for g in range(sgen_pos.shape[0]):
            s_pos[sgen_pos[g]] -= complex(sgen_p_mw[t, g], sgen_q_mvar[t, g]) / sn_mva
        n_iter[t] = _iterate(parent_pos, beta, zeta, y_pos, v_slack, s_pos, tol_pu, max_iter, v, j)
        slack_s_mva[t] = v[0] * np.conj(j[0]) * sn_mva
        loss = 0.0
        for k in range(1, n):
            br = branch_of_pos[k]
            z = z_pu[br]
            # series current, from end behind the ideal transformer and to end voltage (KVL)
            if parent_is_from[k]:  # series current from -> to
                i_s = j[k]
                v_to = v[k]
                v_from_int = v_to + z * i_s
                sign = 1.0
            else:  # series current to -> from
                i_s = np.conj(n_tap[br]) * j[k]
                v_to = v[parent_pos[k]]
                v_from_int = v_to - z * i_s
                sign = -1.0
            i_from = i_s + sign * y_from_pu[br] * v_from_int
            i_to = i_s - sign * y_to_pu[br] * v_to
            i_from_ka = math.sqrt(i_from.real**2 + i_from.imag**2) * i_scale_from_ka[br]
            i_to_ka = math.sqrt(i_to.real**2 + i_to.imag**2) * i_scale_to_ka[br]
            branch_i_ka[t, br] = max(i_from_ka, i_to_ka)
            branch_loading_percent[t, br] = 100.0 * max(
                i_from_ka * inv_rated_from_ka[br], i_to_ka * inv_rated_to_ka[br]
            )
            loss += (
                (i_s.real**2 + i_s.imag**2) * z.real
                + (v_from_int.real**2 + v_from_int.imag**2) * y_from_pu[br].real
                + (v_to.real**2 + v_to.imag**2) * y_to_pu[br].real
            )
        losses_mw[t] = loss * sn_mva
        for k in range(n):
            b = bus_of_pos[k]
            vm_pu[t, b] = math.sqrt(v[k].real ** 2 + v[k].imag ** 2)
            va_degree[t, b] = math.degrees(math.atan2(v[k].imag, v[k].real))
