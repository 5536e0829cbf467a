"""Convert between :class:`~twin.energy.grid.Grid` and pandapower networks.

pandapower is not a dependency of twin (it is in the ``test`` and ``bench`` extras); it is
imported only inside :func:`to_pandapower`. The branch models match pandapower's ``runpp``
defaults (``trafo_model="t"``, ``calculate_voltage_angles=True``, constant-power loads), so
``runpp`` and :func:`twin.energy.powerflow.solve` give the same answer on the same grid.

What :func:`from_pandapower` takes: in-service buses, lines (length, r/x/c/g per km, parallel,
derating factor ``df``), two-winding transformers (std-type or parameter data, parallel,
``df``, phase shift, a ``"Ratio"`` tap changer on either side), loads and static generators
(``scaling`` applied), one external grid (the slack; several on one bus at one voltage count
as one) and switches (a closed bus-bus switch
joins its buses, an open line or transformer switch disconnects that end as pandapower does,
leaving the branch charged from the other end). Out-of-service elements are skipped, and so is
everything not connected to the external grid (a warning says how many buses and loads). It
refuses, with a :class:`~twin.errors.GridError`: a meshed network, in-service elements of
other kinds (generators, shunts, three-winding transformers, impedances, wards, storage, ...),
voltage-dependent loads and tap changers other than a plain ratio tap.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from twin.energy.grid import INDEX, REAL, Grid
from twin.errors import GridError

# element tables the grid cannot represent (refused when they hold in-service rows)
UNSUPPORTED = (
    "gen", "shunt", "trafo3w", "impedance", "ward", "xward", "storage", "dcline", "motor",
    "asymmetric_load", "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc", "line_dc", "bus_dc",
    "source_dc", "load_dc", "b2b_vsc", "vsc_stacked", "vsc_bipolar",
)  # fmt: skip


log = logging.getLogger(__name__)


def _name(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def _col(df: pd.DataFrame, name: str, default: float) -> np.ndarray:
    """A numeric column as float64 with nan replaced by ``default`` (and the default if absent)."""
    if name not in df:
        return np.full(len(df), default, dtype=REAL)
    return pd.to_numeric(df[name], errors="coerce").fillna(default).to_numpy(dtype=REAL)


def _require(df: pd.DataFrame, columns: tuple[str, ...], label: str, what: str) -> None:
    """GridError naming the first in-service ``what`` whose value in ``columns`` is missing or
    not a number (pandapower reads NaN as 0 in places; a grid must not)."""
    on = _in_service(df) if "in_service" in df else np.ones(len(df), dtype=bool)
    for col in columns:
        values = (
            pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=REAL)
            if col in df
            else np.full(len(df), np.nan)
        )
        bad = on & ~np.isfinite(values)
        if bad.any():
            raise GridError(
                f"{label}: {what} {df.index[bad][0]} has no valid {col} "
                f"({int(bad.sum())} {what}s in all)"
            )


def _in_service(df: pd.DataFrame) -> np.ndarray:
    if "in_service" not in df:
        return np.ones(len(df), dtype=bool)
    return df["in_service"].fillna(False).to_numpy(dtype=bool)


class _Buses:
    """Union-find over pandapower bus indices (closed bus-bus switches), plus auxiliary buses."""

    def __init__(self, bus: pd.DataFrame) -> None:
        self.index = bus.index.to_numpy(dtype=np.int64)
        self.pos = {b: i for i, b in enumerate(self.index)}
        self.vn_kv = bus["vn_kv"].to_numpy(dtype=REAL).copy()
        self.name = [_name(x) for x in bus["name"]] if "name" in bus else [""] * len(bus)
        self.in_service = _in_service(bus)
        self.root = np.arange(len(bus))

    def find(self, i: int) -> int:
        while self.root[i] != i:
            self.root[i] = self.root[self.root[i]]
            i = self.root[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.root[max(ra, rb)] = min(ra, rb)

    def add_aux(self, like: int, name: str) -> int:
        """A new bus at the voltage of bus position ``like`` (the open end of a branch)."""
        self.index = np.append(self.index, -1)
        self.vn_kv = np.append(self.vn_kv, self.vn_kv[like])
        self.name.append(name)
        self.in_service = np.append(self.in_service, True)
        self.root = np.append(self.root, len(self.root))
        return len(self.root) - 1


def _open_ends(net: Any, et: str) -> set[tuple[int, int]]:
    """(element, pandapower bus) of every open switch of element type ``et`` ('l', 't')."""
    sw = net.switch
    if len(sw) == 0:
        return set()
    mask = (sw["et"] == et) & ~sw["closed"].astype(bool)
    return set(
        zip(sw.loc[mask, "element"].astype(int), sw.loc[mask, "bus"].astype(int), strict=True)
    )


def _trafo_taps(trafo: pd.DataFrame, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Voltage factors of the HV and LV windings from a plain ratio tap changer."""
    n = len(trafo)
    tap_hv, tap_lv = np.ones(n), np.ones(n)
    if "tap_dependency_table" in trafo:
        dep = trafo["tap_dependency_table"].fillna(False).astype(bool).to_numpy()
        if dep.any():
            raise GridError(
                f"{label}: transformer {trafo.index[dep][0]} has a tap dependency table; "
                "only a plain ratio tap changer is supported"
            )
    for t in ("", "2"):
        if f"tap{t}_pos" not in trafo:
            continue
        pos = _col(trafo, f"tap{t}_pos", np.nan)
        neutral = _col(trafo, f"tap{t}_neutral", np.nan)
        step = _col(trafo, f"tap{t}_step_percent", 0.0)
        degree = _col(trafo, f"tap{t}_step_degree", 0.0)
        kind = (
            trafo[f"tap{t}_changer_type"].astype(object).where(lambda s: s.notna(), "").to_numpy()
            if f"tap{t}_changer_type" in trafo
            else np.where(np.isfinite(pos), "Ratio", "")  # before pandapower 3.0
        )
        side = trafo.get(f"tap{t}_side", pd.Series([""] * n, index=trafo.index)).to_numpy()
        diff = np.nan_to_num(pos - neutral)
        active = (kind != "") & (diff != 0)
        bad = active & ((kind != "Ratio") | (degree != 0) | (t == "2"))
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise GridError(
                f"{label}: transformer {trafo.index[i]} has a tap changer of type "
                f"{kind[i]!r} (tap{t}, step {degree[i]} degree) off its neutral position; only a "
                "plain ratio tap changer is supported"
            )
        factor = 1 + diff * step / 100
        tap_hv = np.where(active & (side == "hv"), factor, tap_hv)
        tap_lv = np.where(active & (side == "lv"), factor, tap_lv)
    return tap_hv, tap_lv


def from_pandapower(net: Any, *, name: str | None = None) -> Grid:
    """A :class:`Grid` from a radial pandapower network (see the module docstring).

    ``bus_id``, ``branch_id``, ``load_id`` and ``sgen_id`` hold the pandapower indices (a
    branch's is its line or transformer index, per ``branch_is_trafo``; an auxiliary bus made
    for an open switch has id -1; buses joined by closed bus-bus switches keep the smallest
    index). Raises :class:`~twin.errors.GridError` if the network cannot be represented.
    """
    gname = _name(net.name) if name is None and "name" in net else (name or "")
    label = f"pandapower network {gname!r}" if gname else "pandapower network"
    for table in UNSUPPORTED:
        df = net.get(table)
        if isinstance(df, pd.DataFrame) and len(df) and _in_service(df).any():
            idx = df.index[_in_service(df)]
            raise GridError(
                f"{label}: {len(idx)} in-service {table} element(s) (first: index {idx[0]}) "
                "cannot be represented; a Grid takes buses, lines, two-winding transformers, "
                "loads, static generators, switches and one external grid"
            )
    ext = net.ext_grid[_in_service(net.ext_grid)]
    same_bus = len(ext) > 1 and ext["bus"].nunique() == 1
    if same_bus and ext["vm_pu"].nunique() == 1 and np.ptp(_col(ext, "va_degree", 0.0)) == 0:
        ext = ext.iloc[:1]  # several sources on one bus at one voltage are one slack
    if len(ext) != 1:
        raise GridError(
            f"{label}: {len(ext)} in-service external grids"
            + (" on one bus at different voltages" if same_bus else " on different buses")
            + "; a Grid has exactly one slack bus"
        )
    buses = _Buses(net.bus)
    pos = buses.pos
    sw = net.switch
    if len(sw):
        bb = sw[(sw["et"] == "b") & sw["closed"].astype(bool)]
        if "z_ohm" in bb and (bb["z_ohm"].fillna(0) > 0).any():
            raise GridError(
                f"{label}: closed bus-bus switch {bb.index[bb['z_ohm'] > 0][0]} has an "
                "impedance (z_ohm > 0); only ideal switches are supported"
            )
        for a, b in zip(bb["bus"].astype(int), bb["element"].astype(int), strict=True):
            buses.join(pos[a], pos[b])

    rows: list[dict[str, Any]] = []
    # lines
    line = net.line
    _require(line, ("length_km", "r_ohm_per_km", "x_ohm_per_km", "max_i_ka"), label, "line")
    keep = _in_service(line)
    open_l = _open_ends(net, "l")
    f_hz = float(net.get("f_hz", 50.0))
    par, df_ = _col(line, "parallel", 1.0), _col(line, "df", 1.0)
    length = _col(line, "length_km", np.nan)
    r = _col(line, "r_ohm_per_km", np.nan) * length / par
    x = _col(line, "x_ohm_per_km", np.nan) * length / par
    g_us = _col(line, "g_us_per_km", 0.0) * length * par
    b_us = 2 * math.pi * f_hz * _col(line, "c_nf_per_km", 0.0) * 1e-3 * length * par
    max_i = _col(line, "max_i_ka", np.nan) * df_ * par
    for i, idx in enumerate(line.index):
        if keep[i]:
            fb, tb = int(line.at[idx, "from_bus"]), int(line.at[idx, "to_bus"])
            rows.append(
                dict(kind="line", id=idx, a=fb, b=tb, open_a=(idx, fb) in open_l,
                     open_b=(idx, tb) in open_l, r=r[i], x=x[i], g=g_us[i], bsh=b_us[i],
                     length=length[i], max_i=max_i[i], sn=np.nan, vn_a=np.nan, vn_b=np.nan,
                     tap_a=1.0, tap_b=1.0, shift=0.0, name=_name(line.at[idx, "name"]))
            )  # fmt: skip
    # two-winding transformers
    trafo = net.trafo
    if len(trafo):
        for col in ("leakage_resistance_ratio_hv", "leakage_reactance_ratio_hv"):
            ratio = _col(trafo, col, 0.5)
            if (np.abs(ratio - 0.5) > 1e-12).any():
                raise GridError(
                    f"{label}: transformer {trafo.index[np.abs(ratio - 0.5) > 1e-12][0]} has "
                    f"{col} != 0.5; the grid splits the impedance half and half"
                )
        _require(trafo, ("sn_mva", "vn_hv_kv", "vn_lv_kv", "vk_percent", "vkr_percent"), label,
                 "transformer")  # fmt: skip
        vk_all, vkr_all = _col(trafo, "vk_percent", np.nan), _col(trafo, "vkr_percent", np.nan)
        short = _in_service(trafo) & (vk_all < vkr_all)
        if short.any():
            i = np.flatnonzero(short)[0]
            raise GridError(
                f"{label}: transformer {trafo.index[i]} has vk_percent {vk_all[i]:g} below "
                f"vkr_percent {vkr_all[i]:g}; the short-circuit voltage includes its resistive part"
            )
        keep = _in_service(trafo)
        open_t = _open_ends(net, "t")
        tap_hv, tap_lv = _trafo_taps(trafo, label)
        par, df_ = _col(trafo, "parallel", 1.0), _col(trafo, "df", 1.0)
        sn = _col(trafo, "sn_mva", np.nan)
        vn_hv, vn_lv = _col(trafo, "vn_hv_kv", np.nan), _col(trafo, "vn_lv_kv", np.nan)
        vk, vkr = _col(trafo, "vk_percent", np.nan), _col(trafo, "vkr_percent", np.nan)
        z_base = vn_lv**2 / sn  # ohm, LV winding at rated voltage
        z = vk / 100 * z_base / par
        r = vkr / 100 * z_base / par
        x = np.sign(z) * np.sqrt(np.maximum(z**2 - r**2, 0))
        # magnetising branch (pandapower build_branch._calc_y_from_dataframe)
        pfe_mw = _col(trafo, "pfe_kw", 0.0) * 1e-3
        ym_mva = _col(trafo, "i0_percent", 0.0) / 100 * sn
        bm_mva = -np.sqrt(np.maximum(ym_mva**2 - pfe_mw**2, 0))
        g_us = pfe_mw / vn_lv**2 * par * 1e6
        b_us = bm_mva / vn_lv**2 * par * 1e6
        shift = _col(trafo, "shift_degree", 0.0)
        for i, idx in enumerate(trafo.index):
            if keep[i]:
                hb, lb = int(trafo.at[idx, "hv_bus"]), int(trafo.at[idx, "lv_bus"])
                rows.append(
                    dict(kind="trafo", id=idx, a=hb, b=lb, open_a=(idx, hb) in open_t,
                         open_b=(idx, lb) in open_t, r=r[i], x=x[i], g=g_us[i], bsh=b_us[i],
                         length=np.nan, max_i=np.nan, sn=sn[i] * par[i] * df_[i], vn_a=vn_hv[i],
                         vn_b=vn_lv[i], tap_a=tap_hv[i], tap_b=tap_lv[i], shift=shift[i],
                         name=_name(trafo.at[idx, "name"]))
                )  # fmt: skip

    # branch ends: a closed end at its (joined) bus, an open end at a new auxiliary bus
    ends = []
    for row in rows:
        if row["a"] not in pos or row["b"] not in pos:
            continue
        ia, ib = pos[row["a"]], pos[row["b"]]
        if not (buses.in_service[ia] and buses.in_service[ib]):
            continue
        if row["open_a"] and row["open_b"]:
            continue  # disconnected at both ends
        if row["open_a"]:
            ia = buses.add_aux(ia, f"open end of {row['kind']} {row['id']}")
        if row["open_b"]:
            ib = buses.add_aux(ib, f"open end of {row['kind']} {row['id']}")
        ends.append((row, ia, ib))
    root = np.array([buses.find(i) for i in range(len(buses.root))], dtype=np.int64)
    slack_bus = int(ext["bus"].iloc[0])
    if slack_bus not in pos or not buses.in_service[pos[slack_bus]]:
        raise GridError(f"{label}: the external grid's bus {slack_bus} is out of service")
    slack = root[pos[slack_bus]]

    # keep what is connected to the slack (pandapower's check_connectivity drops the rest)
    n_all = len(root)
    adj: list[list[int]] = [[] for _ in range(n_all)]
    for _, ia, ib in ends:
        adj[root[ia]].append(root[ib])
        adj[root[ib]].append(root[ia])
    reached = np.zeros(n_all, dtype=bool)
    reached[slack] = True
    stack = [slack]
    while stack:
        u = stack.pop()
        for w in adj[u]:
            if not reached[w]:
                reached[w] = True
                stack.append(w)
    kept = np.flatnonzero(reached)  # representatives, in pandapower order then auxiliary
    new = np.full(n_all, -1, dtype=np.int64)
    new[kept] = np.arange(len(kept))
    bus_of = new[root]  # pandapower bus position -> grid bus (-1: dropped)
    ends = [(row, ia, ib) for row, ia, ib in ends if reached[root[ia]]]

    def bus_col(rows_: list, key: str, dtype: type) -> np.ndarray:
        return np.array([row[key] for row, _, _ in rows_], dtype=dtype)

    loads = net.load[_in_service(net.load)]
    _require(loads, ("p_mw", "q_mvar"), label, "load")
    _require(net.sgen, ("p_mw", "q_mvar"), label, "static generator")
    for cols in (
        ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent"),
        ("const_z_percent", "const_i_percent"),  # before pandapower 3.0
    ):
        for col in cols:
            if col in loads and (_col(loads, col, 0.0) != 0).any():
                raise GridError(
                    f"{label}: load {loads.index[_col(loads, col, 0.0) != 0][0]} is voltage "
                    f"dependent ({col}); the grid's loads are constant power"
                )
    load_bus = np.array([bus_of[pos[b]] if b in pos else -1 for b in loads["bus"]], dtype=int)
    lk = load_bus >= 0
    orig = np.arange(len(net.bus))  # pandapower's buses (auxiliary open-end buses follow)
    cut_buses = int((buses.in_service[orig] & ~reached[root[orig]]).sum())
    cut_loads = int((~lk).sum())
    if cut_buses or cut_loads:
        log.warning(
            "%s: %d in-service buses and %d in-service loads (%.3f MW) are not connected to the "
            "external grid and are left out, as pandapower's check_connectivity leaves them "
            "unsupplied",
            label, cut_buses, cut_loads, float(_col(loads, "p_mw", 0.0)[~lk].sum()),
        )  # fmt: skip
    scale = _col(loads, "scaling", 1.0)
    sgens = net.sgen[_in_service(net.sgen)]
    sgen_bus = np.array([bus_of[pos[b]] if b in pos else -1 for b in sgens["bus"]], dtype=int)
    gk = sgen_bus >= 0
    gscale = _col(sgens, "scaling", 1.0)

    is_trafo = bus_col(ends, "kind", object) == "trafo"
    vn_bus = buses.vn_kv[kept]
    fr = np.array([new[root[ia]] for _, ia, _ in ends], dtype=INDEX)
    to = np.array([new[root[ib]] for _, _, ib in ends], dtype=INDEX)
    grid = Grid(
        name=gname,
        sn_mva=float(net.sn_mva),
        f_hz=f_hz,
        bus_vn_kv=vn_bus,
        bus_name=np.array([buses.name[i] for i in kept], dtype=object),
        bus_id=buses.index[kept],
        branch_from=fr,
        branch_to=to,
        branch_r_ohm=bus_col(ends, "r", REAL),
        branch_x_ohm=bus_col(ends, "x", REAL),
        branch_g_us=bus_col(ends, "g", REAL),
        branch_b_us=bus_col(ends, "bsh", REAL),
        branch_is_trafo=is_trafo,
        branch_length_km=bus_col(ends, "length", REAL),
        branch_max_i_ka=bus_col(ends, "max_i", REAL),
        branch_sn_mva=bus_col(ends, "sn", REAL),
        branch_vn_from_kv=np.where(is_trafo, bus_col(ends, "vn_a", REAL), vn_bus[fr]),
        branch_vn_to_kv=np.where(is_trafo, bus_col(ends, "vn_b", REAL), vn_bus[to]),
        branch_tap_from_pu=bus_col(ends, "tap_a", REAL),
        branch_tap_to_pu=bus_col(ends, "tap_b", REAL),
        branch_shift_degree=bus_col(ends, "shift", REAL),
        branch_id=bus_col(ends, "id", np.int64),
        branch_name=bus_col(ends, "name", object),
        slack_bus=int(new[slack]),
        slack_vm_pu=float(ext["vm_pu"].iloc[0]),
        slack_va_degree=float(_col(ext, "va_degree", 0.0)[0]),
        load_bus=load_bus[lk],
        load_p_mw=(_col(loads, "p_mw", 0.0) * scale)[lk],
        load_q_mvar=(_col(loads, "q_mvar", 0.0) * scale)[lk],
        load_id=loads.index.to_numpy(dtype=np.int64)[lk],
        sgen_bus=sgen_bus[gk],
        sgen_p_mw=(_col(sgens, "p_mw", 0.0) * gscale)[gk],
        sgen_q_mvar=(_col(sgens, "q_mvar", 0.0) * gscale)[gk],
        sgen_id=sgens.index.to_numpy(dtype=np.int64)[gk],
    )
    try:
        return grid.validate()
    except GridError as e:
        raise GridError(f"{label}: {e}") from None


def to_pandapower(grid: Grid) -> Any:
    """A pandapower network of the grid: buses, lines, transformers, loads, sgens, ext_grid.

    Element indices are the grid's ``0..n-1`` (lines and transformers numbered separately, in
    branch order). A line with no length gets 1 km; a transformer needs ``branch_sn_mva`` and an
    inductive (or zero) magnetising branch, and may be tapped on one winding only.
    """
    import pandapower as pp  # optional dependency: only here

    grid.validate()
    net = pp.create_empty_network(name=grid.name, f_hz=grid.f_hz, sn_mva=grid.sn_mva)
    xy = None
    if np.isfinite(grid.bus_x_m).all() and np.isfinite(grid.bus_y_m).all():
        xy = list(zip(grid.bus_x_m.tolist(), grid.bus_y_m.tolist(), strict=True))
    pp.create_buses(net, grid.n_bus, grid.bus_vn_kv, name=list(grid.bus_name), geodata=xy)
    pp.create_ext_grid(
        net, grid.slack_bus, vm_pu=grid.slack_vm_pu, va_degree=grid.slack_va_degree, name="slack"
    )
    lines = np.flatnonzero(~grid.branch_is_trafo)
    if lines.size:
        length = grid.branch_length_km[lines]
        length = np.where(np.isfinite(length) & (length > 0), length, 1.0)
        omega = 2 * math.pi * grid.f_hz
        pp.create_lines_from_parameters(
            net,
            grid.branch_from[lines],
            grid.branch_to[lines],
            length_km=length,
            r_ohm_per_km=grid.branch_r_ohm[lines] / length,
            x_ohm_per_km=grid.branch_x_ohm[lines] / length,
            c_nf_per_km=grid.branch_b_us[lines] / (omega * 1e-3) / length,
            g_us_per_km=grid.branch_g_us[lines] / length,
            max_i_ka=np.nan_to_num(grid.branch_max_i_ka[lines], nan=np.inf),
            name=list(grid.branch_name[lines]),
        )
    trafos = np.flatnonzero(grid.branch_is_trafo)
    if trafos.size:
        sn = grid.branch_sn_mva[trafos]
        vn_lv = grid.branch_vn_to_kv[trafos]
        g_s = grid.branch_g_us[trafos] * 1e-6
        b_s = grid.branch_b_us[trafos] * 1e-6
        tap_hv, tap_lv = grid.branch_tap_from_pu[trafos], grid.branch_tap_to_pu[trafos]
        for mask, what in (
            (~(sn > 0), "has no rating branch_sn_mva"),
            (b_s > 0, "has a capacitive magnetising branch (b > 0)"),
            ((tap_hv != 1) & (tap_lv != 1), "is tapped on both windings"),
        ):
            if mask.any():
                raise GridError(
                    f"grid {grid.name!r}: {grid.branch_label(trafos[mask][0])} {what}; "
                    "pandapower cannot take it"
                )
        z_base = vn_lv**2 / sn
        z_ohm = np.hypot(grid.branch_r_ohm[trafos], grid.branch_x_ohm[trafos])
        tapped_lv = tap_lv != 1
        pp.create_transformers_from_parameters(
            net,
            grid.branch_from[trafos],
            grid.branch_to[trafos],
            sn_mva=sn,
            vn_hv_kv=grid.branch_vn_from_kv[trafos],
            vn_lv_kv=vn_lv,
            vkr_percent=grid.branch_r_ohm[trafos] / z_base * 100,
            vk_percent=z_ohm / z_base * 100,
            pfe_kw=g_s * vn_lv**2 * 1e3,
            i0_percent=np.hypot(g_s, b_s) * vn_lv**2 / sn * 100,
            shift_degree=grid.branch_shift_degree[trafos],
            tap_side=np.where(tapped_lv, "lv", "hv").tolist(),
            tap_neutral=0,
            tap_pos=1,
            tap_step_percent=(np.where(tapped_lv, tap_lv, tap_hv) - 1) * 100,
            tap_changer_type="Ratio",
            name=list(grid.branch_name[trafos]),
        )
    if grid.n_load:
        pp.create_loads(net, grid.load_bus, p_mw=grid.load_p_mw, q_mvar=grid.load_q_mvar)
    if grid.n_sgen:
        pp.create_sgens(net, grid.sgen_bus, p_mw=grid.sgen_p_mw, q_mvar=grid.sgen_q_mvar)
    return net
