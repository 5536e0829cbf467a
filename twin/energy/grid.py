"""Grid: a radial electricity distribution network as typed numpy arrays.

Buses are ``0..n_bus-1``; branches ``0..n_branch-1`` hold the lines and the two-winding
transformers in one table (``branch_is_trafo`` tells them apart). Physical values are stored in
the units their names carry; :mod:`twin.energy.powerflow` converts them to per unit on the
system base ``sn_mva`` and each bus's nominal voltage ``bus_vn_kv``. The branch models are
pandapower's (``runpp`` defaults), so a grid solves the same in both:

- a **line** is a pi section: series impedance ``branch_r_ohm + j*branch_x_ohm`` and shunt
  admittance ``branch_g_us + j*branch_b_us`` of the whole line (parallel circuits included),
  the shunt split half to each end. Both ends are at the same nominal voltage.
- a **transformer** runs from its HV winding (``branch_from``) to its LV winding
  (``branch_to``). Its short-circuit impedance ``branch_r_ohm + j*branch_x_ohm`` and magnetising
  admittance ``branch_g_us + j*branch_b_us`` (``b < 0``: inductive) are referred to the LV
  winding at its rated voltage ``branch_vn_to_kv``, in a T equivalent: the series impedance split
  half and half around the magnetising branch (pandapower's ``trafo_model="t"``). An ideal
  transformer at the HV end has the ratio ``(vn_from * tap_from) / (vn_to * tap_to)`` against the
  buses' nominal ratio, and the phase shift ``branch_shift_degree`` (the LV side lags; Dyn5 is
  150). A tap on the LV winding also scales the impedances referred to it by ``tap_to**2``
  (pandapower's convention).

Loads are constant power (consumption positive), static generators likewise (generation
positive). One bus, the slack, is held at ``slack_vm_pu`` and ``slack_va_degree``: the feeding
grid. :meth:`Grid.validate` checks all this and computes the radial order once
(:attr:`Grid.radial`). A grid is immutable: its arrays are read-only (writing to one raises
``ValueError``) and its fields cannot be reassigned, because the radial order and the solver's
per-unit arrays (:func:`twin.energy.powerflow.compile_grid`) are cached per grid object. To
change a network, build a new grid: :meth:`Grid.replace` (``grid.replace(branch_sn_mva=new)``)
copies the given arrays and starts with empty caches. Loads and generation are passed to the
solver per snapshot, so load profiles need no new grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from twin.errors import GridError

# dtypes of every grid and power-flow array, chosen here once
INDEX = np.int32  # bus, branch, load and generator indices
REAL = np.float64
COMPLEX = np.complex128


@dataclass(frozen=True)
class RadialOrder:
    """The grid as a tree hanging from the slack bus (computed once by :meth:`Grid.validate`)."""

    order: np.ndarray  # int32 buses in breadth-first order from the slack (order[0] = slack)
    parent_bus: np.ndarray  # int32 per bus, the next bus towards the slack; -1 at the slack
    parent_branch: np.ndarray  # int32 per bus, the branch to parent_bus; -1 at the slack
    parent_is_from: np.ndarray  # bool per bus, parent_bus is its parent branch's from bus
    depth: np.ndarray  # int32 per bus, branches between it and the slack

    def __post_init__(self) -> None:
        for f in fields(self):
            getattr(self, f.name).setflags(write=False)


@dataclass(frozen=True, eq=False)
class Grid:
    """A radial distribution grid; every array is indexed by bus, branch, load or sgen.

    Optional arrays may be left ``None``; they are filled with the default in their comment.
    The grid owns copies of the arrays it is given, read-only (see the module docstring):
    :meth:`replace` makes a changed grid.
    """

    # buses
    bus_vn_kv: np.ndarray  # float64, nominal line-to-line voltage (the per-unit voltage base)
    # branches: lines and two-winding transformers
    branch_from: np.ndarray  # int32 bus; a transformer's HV side
    branch_to: np.ndarray  # int32 bus; a transformer's LV side
    branch_r_ohm: np.ndarray  # float64 series resistance (transformer: referred to LV)
    branch_x_ohm: np.ndarray  # float64 series reactance (transformer: referred to LV)
    # the slack bus: the feeding grid, held at a fixed voltage
    slack_bus: int
    slack_vm_pu: float = 1.0
    slack_va_degree: float = 0.0
    sn_mva: float = 1.0  # per-unit system base power (pandapower's default net.sn_mva)
    f_hz: float = 50.0  # system frequency, to convert line capacitance (pandapower's default)
    name: str = ""
    # optional bus arrays
    bus_name: np.ndarray = None  # str (object); ""
    bus_id: np.ndarray = None  # int64, id in the source (pandapower bus index); 0..n-1, -1 = added
    bus_x_m: np.ndarray = None  # float64 projected coordinates; nan
    bus_y_m: np.ndarray = None  # float64; nan
    # optional branch arrays
    branch_g_us: np.ndarray = None  # float64 shunt conductance, whole branch (µS); 0
    branch_b_us: np.ndarray = None  # float64 shunt susceptance, whole branch (µS); 0
    branch_is_trafo: np.ndarray = None  # bool; False (all lines)
    branch_length_km: np.ndarray = None  # float64 line length; nan
    branch_max_i_ka: np.ndarray = None  # float64 line rating (parallel, derating incl.); nan
    branch_sn_mva: np.ndarray = None  # float64 transformer rating (parallel incl.); nan
    branch_vn_from_kv: np.ndarray = None  # float64 rated from-winding voltage; bus_vn_kv
    branch_vn_to_kv: np.ndarray = None  # float64 rated to-winding voltage; bus_vn_kv
    branch_tap_from_pu: np.ndarray = None  # float64 tap factor on the from winding's voltage; 1
    branch_tap_to_pu: np.ndarray = None  # float64 tap factor on the to winding's voltage; 1
    branch_shift_degree: np.ndarray = None  # float64 phase shift, to side lagging; 0
    branch_id: np.ndarray = None  # int64 id in the source (pandapower line/trafo index); 0..n-1
    branch_name: np.ndarray = None  # str (object); ""
    # constant-power loads (consumption positive)
    load_bus: np.ndarray = None  # int32; none
    load_p_mw: np.ndarray = None  # float64; 0
    load_q_mvar: np.ndarray = None  # float64; 0
    load_id: np.ndarray = None  # int64 id in the source; 0..n-1
    # static generators (generation positive)
    sgen_bus: np.ndarray = None  # int32; none
    sgen_p_mw: np.ndarray = None  # float64; 0
    sgen_q_mvar: np.ndarray = None  # float64; 0
    sgen_id: np.ndarray = None  # int64 id in the source; 0..n-1

    def __post_init__(self) -> None:
        nb = len(np.asarray(self.bus_vn_kv))
        nl = len(np.asarray(self.branch_from))
        nld = 0 if self.load_bus is None else len(np.asarray(self.load_bus))
        nsg = 0 if self.sgen_bus is None else len(np.asarray(self.sgen_bus))
        vn = np.asarray(self.bus_vn_kv, dtype=REAL)
        fr = np.asarray(self.branch_from, dtype=INDEX)
        to = np.asarray(self.branch_to, dtype=INDEX)
        ok = (fr >= 0) & (fr < nb) & (to >= 0) & (to < nb)
        vn_from = np.where(ok, vn[np.where(ok, fr, 0)], np.nan) if nb else np.full(nl, np.nan)
        vn_to = np.where(ok, vn[np.where(ok, to, 0)], np.nan) if nb else np.full(nl, np.nan)
        defaults: dict[str, tuple[Any, Any]] = {
            # name: (dtype, default value or array)
            "bus_vn_kv": (REAL, None),
            "bus_name": (object, ""),
            "bus_id": (np.int64, np.arange(nb)),
            "bus_x_m": (REAL, np.nan),
            "bus_y_m": (REAL, np.nan),
            "branch_from": (INDEX, None),
            "branch_to": (INDEX, None),
            "branch_r_ohm": (REAL, None),
            "branch_x_ohm": (REAL, None),
            "branch_g_us": (REAL, 0.0),
            "branch_b_us": (REAL, 0.0),
            "branch_is_trafo": (np.bool_, False),
            "branch_length_km": (REAL, np.nan),
            "branch_max_i_ka": (REAL, np.nan),
            "branch_sn_mva": (REAL, np.nan),
            "branch_vn_from_kv": (REAL, vn_from),
            "branch_vn_to_kv": (REAL, vn_to),
            "branch_tap_from_pu": (REAL, 1.0),
            "branch_tap_to_pu": (REAL, 1.0),
            "branch_shift_degree": (REAL, 0.0),
            "branch_id": (np.int64, np.arange(nl)),
            "branch_name": (object, ""),
            "load_bus": (INDEX, np.zeros(0)),
            "load_p_mw": (REAL, 0.0),
            "load_q_mvar": (REAL, 0.0),
            "load_id": (np.int64, np.arange(nld)),
            "sgen_bus": (INDEX, np.zeros(0)),
            "sgen_p_mw": (REAL, 0.0),
            "sgen_q_mvar": (REAL, 0.0),
            "sgen_id": (np.int64, np.arange(nsg)),
        }
        sizes = {"bus": nb, "branch": nl, "load": nld, "sgen": nsg}
        for name, (dtype, default) in defaults.items():
            n = sizes[name.split("_", 1)[0]]
            value = getattr(self, name)
            if value is None:
                if default is None:
                    raise GridError(f"grid {self.name!r}: {name} is required")
                value = np.full(n, default, dtype=dtype) if np.ndim(default) == 0 else default
            arr = np.array(value, dtype=dtype)  # a copy: the grid owns its arrays
            if arr.shape != (n,):
                raise GridError(
                    f"grid {self.name!r}: {name} has shape {arr.shape}, expected ({n},)"
                )
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name in ("slack_vm_pu", "slack_va_degree", "sn_mva", "f_hz"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "slack_bus", int(self.slack_bus))

    def replace(self, **changes: Any) -> Grid:
        """A new grid with the given fields changed (arrays copied, caches empty)."""
        return dataclasses.replace(self, **changes)

    # immutable: a copy is the grid itself (its caches stay valid); unpickled arrays are
    # made read-only again
    def __copy__(self) -> Grid:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Grid:
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        for value in state.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        self.__dict__.update(state)

    # sizes
    @property
    def n_bus(self) -> int:
        return len(self.bus_vn_kv)

    @property
    def n_branch(self) -> int:
        return len(self.branch_from)

    @property
    def n_load(self) -> int:
        return len(self.load_bus)

    @property
    def n_sgen(self) -> int:
        return len(self.sgen_bus)

    @property
    def n_trafo(self) -> int:
        return int(self.branch_is_trafo.sum())

    def validate(self) -> Grid:
        """Check values and topology (radial, connected to the slack); return the grid.

        Raises :class:`~twin.errors.GridError` naming the offending bus or branch. The radial
        order is computed here once and kept in :attr:`radial`.
        """
        _ = self.radial
        return self

    @cached_property
    def radial(self) -> RadialOrder:
        """The breadth-first tree from the slack bus; validates the grid on first use."""
        self._check_values()
        return self._radial_order()

    def summary(self) -> dict[str, Any]:
        """Counts and totals, JSON-able."""
        return {
            "name": self.name,
            "buses": self.n_bus,
            "lines": self.n_branch - self.n_trafo,
            "transformers": self.n_trafo,
            "line_km": float(np.nansum(self.branch_length_km[~self.branch_is_trafo])),
            "loads": self.n_load,
            "load_mw": float(self.load_p_mw.sum()),
            "load_mvar": float(self.load_q_mvar.sum()),
            "sgens": self.n_sgen,
            "sgen_mw": float(self.sgen_p_mw.sum()),
            "voltage_levels_kv": sorted({float(v) for v in self.bus_vn_kv}),
            "max_depth": int(self.radial.depth.max()) if self.n_bus else 0,
        }

    # labels for error messages
    def bus_label(self, bus: int) -> str:
        label = f"bus {bus}"
        if self.bus_name[bus]:
            label += f" {self.bus_name[bus]!r}"
        if self.bus_id[bus] != bus:
            label += f" (id {self.bus_id[bus]})"
        return label

    def branch_label(self, k: int) -> str:
        kind = "transformer" if self.branch_is_trafo[k] else "line"
        label = f"{kind} {k}"
        if self.branch_name[k]:
            label += f" {self.branch_name[k]!r}"
        if self.branch_id[k] != k:
            label += f" (id {self.branch_id[k]})"
        return label + f" (bus {self.branch_from[k]} - bus {self.branch_to[k]})"

    def _fail(self, what: str) -> GridError:
        return GridError(f"grid {self.name!r}: {what}" if self.name else f"grid: {what}")

    def _check_values(self) -> None:
        nb = self.n_bus
        if nb == 0:
            raise self._fail("has no buses")
        if not 0 <= self.slack_bus < nb:
            raise self._fail(f"slack_bus {self.slack_bus} is not a bus (0..{nb - 1})")
        if not (np.isfinite(self.slack_vm_pu) and self.slack_vm_pu > 0):
            raise self._fail(f"slack_vm_pu must be positive, not {self.slack_vm_pu}")
        if not self.sn_mva > 0:
            raise self._fail(f"sn_mva must be positive, not {self.sn_mva}")
        bad = np.flatnonzero(~(self.bus_vn_kv > 0))
        if bad.size:
            raise self._fail(f"{self.bus_label(bad[0])} has bus_vn_kv {self.bus_vn_kv[bad[0]]}")
        for kind in ("branch", "load", "sgen"):
            ends = ("branch_from", "branch_to") if kind == "branch" else (f"{kind}_bus",)
            for name in ends:
                idx = getattr(self, name)
                bad = np.flatnonzero((idx < 0) | (idx >= nb))
                if bad.size:
                    raise self._fail(f"{name}[{bad[0]}] = {idx[bad[0]]} is not a bus (0..{nb - 1})")
        for name in ("load_p_mw", "load_q_mvar", "sgen_p_mw", "sgen_q_mvar"):
            bad = np.flatnonzero(~np.isfinite(getattr(self, name)))
            if bad.size:
                raise self._fail(f"{name}[{bad[0]}] is not finite")
        fr, to, trafo = self.branch_from, self.branch_to, self.branch_is_trafo
        checks = [
            (fr == to, "connects a bus to itself"),
            (~np.isfinite(self.branch_r_ohm) | (self.branch_r_ohm < 0), "has a bad branch_r_ohm"),
            (~np.isfinite(self.branch_x_ohm), "has a bad branch_x_ohm"),
            (np.hypot(self.branch_r_ohm, self.branch_x_ohm) == 0, "has zero impedance"),
            (~np.isfinite(self.branch_g_us) | ~np.isfinite(self.branch_b_us), "has a bad shunt"),
            (
                ~trafo & ~np.isclose(self.bus_vn_kv[fr], self.bus_vn_kv[to], rtol=1e-9, atol=0),
                "is a line between buses of different nominal voltage",
            ),
            (
                trafo & ~((self.branch_vn_from_kv > 0) & (self.branch_vn_to_kv > 0)),
                "has no positive rated voltages (branch_vn_from_kv, branch_vn_to_kv)",
            ),
            (
                trafo & ~((self.branch_tap_from_pu > 0) & (self.branch_tap_to_pu > 0)),
                "has a tap factor that is not positive",
            ),
            (~np.isfinite(self.branch_shift_degree), "has a bad branch_shift_degree"),
        ]
        for mask, what in checks:
            bad = np.flatnonzero(mask)
            if bad.size:
                raise self._fail(f"{self.branch_label(bad[0])} {what}")

    def _radial_order(self) -> RadialOrder:
        nb, nl, slack = self.n_bus, self.n_branch, self.slack_bus
        fr, to = self.branch_from, self.branch_to
        adj = coo_matrix((np.ones(nl), (fr, to)), shape=(nb, nb)).tocsr()
        order, pred = breadth_first_order(adj, slack, directed=False, return_predecessors=True)
        if len(order) < nb:
            reached = np.zeros(nb, dtype=bool)
            reached[order] = True
            lost = np.flatnonzero(~reached)
            raise self._fail(
                f"{self.bus_label(lost[0])} is not connected to the slack bus "
                f"({lost.size} of {nb} buses are not); the power flow needs one connected tree"
            )
        pred = pred.astype(np.int64)
        pred[slack] = -1
        # a branch is a tree edge if it joins a bus to its BFS predecessor; of parallel
        # branches only the first is; every other branch closes a loop
        child = np.where(pred[to] == fr, to, np.where(pred[fr] == to, fr, -1))
        cand = np.flatnonzero(child >= 0)
        _, first = np.unique(child[cand], return_index=True)
        tree = cand[first]
        parent_branch = np.full(nb, -1, dtype=INDEX)
        parent_branch[child[tree]] = tree
        if tree.size != nl:
            extra = np.setdiff1d(np.arange(nl), tree)
            loop = self._loop(int(extra[0]), pred, parent_branch)
            shown = ", ".join(str(k) for k in loop[:12]) + (", ..." if len(loop) > 12 else "")
            raise self._fail(
                f"is meshed: {self.branch_label(extra[0])} closes a loop of {len(loop)} "
                f"branches ({shown}); {extra.size} branch(es) too many for a tree, and the "
                "power flow is radial"
            )
        parent_is_from = np.zeros(nb, dtype=np.bool_)
        parent_is_from[child[tree]] = fr[tree] == pred[child[tree]]
        depth = np.zeros(nb, dtype=INDEX)
        for b in order[1:]:  # parents come first in BFS order
            depth[b] = depth[pred[b]] + 1
        return RadialOrder(
            order=order.astype(INDEX),
            parent_bus=pred.astype(INDEX),
            parent_branch=parent_branch,
            parent_is_from=parent_is_from,
            depth=depth,
        )

    def _loop(self, k: int, pred: np.ndarray, parent_branch: np.ndarray) -> list[int]:
        """The branches of the loop that branch ``k`` closes in the BFS tree."""
        up_a: dict[int, list[int]] = {}
        a, path = int(self.branch_from[k]), []
        while True:
            up_a[a] = list(path)
            if pred[a] < 0:
                break
            path.append(int(parent_branch[a]))
            a = int(pred[a])
        b, path_b = int(self.branch_to[k]), []
        while b not in up_a:
            path_b.append(int(parent_branch[b]))
            b = int(pred[b])
        return [k, *path_b, *reversed(up_a[b])]
