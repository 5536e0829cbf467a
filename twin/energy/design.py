"""Design rules of synthesised grids: their configuration, the design load, and sizing.

**Sizing** (so the base case is plausible, not overloaded). The design load of ``n`` homes is
Dickert & Schegner's coincidence model, ``P(n) = n * P1 * (c_inf + (1 - c_inf) / sqrt(n))``
with a single home's peak ``P1`` = 10 kW, ``c_inf`` = 0.1 and cos phi 0.95 (J. Dickert,
P. Schegner, "Residential load models for network planning purposes", Modern Electric Power
Systems 2010, Wroclaw; the defaults of pandapower's Dickert LV networks): 10 kW for one home,
1.9 kW per home for 100, tending to 1 kW. Every piece of equipment carries the design load of
all the households behind it, plus ``sizing_margin`` (20 % headroom), at the level's nominal
voltage: a transformer is the smallest catalogue size rated for it (parallel units of the
largest beyond), a cable the thinnest catalogue cable rated for its current (parallel circuits
of the thickest beyond: several feeders sharing a street near a busbar). Trunks are therefore
thicker than branches. Then, wherever the voltage drop along a path at the design load (the
linear ``(P R + Q X) / V**2`` estimate) exceeds ``max_lv_drop_percent`` (busbar to every
road-node and tee bus: each segment of a street cable carries the households teed on beyond
it) or ``max_mv_drop_percent`` (substation to transformer), the cables on that path are
thickened, thin sections first. A house connection is sized for the households of its
building (one, for a home along a street).

**Tap changers**: an HV/MV transformer's on-load tap changer is represented by the fixed tap
(whole steps of its range) that holds its MV busbar at ``mv_setpoint_pu`` under the design
load of its households, less the charging of its MV cables (:func:`oltc_taps`).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from twin.energy.catalogue import CableType, TransformerType, transformer_impedance
from twin.timefmt import Section

DROP_ROUNDS = 30  # rounds of thickening cables for voltage drop before giving up


class GridConfig(Section):
    """How a city's grid is synthesised: limits, design load and sizing (see
    :mod:`twin.energy.synthesis`, :mod:`twin.energy.siting` and this module)."""

    #: most households one MV/LV transformer serves; default 200 (judgement: a 400-630 kVA
    #: urban kiosk; with the design load below 200 homes need 413 kVA incl. the margin)
    max_households_per_transformer: int = Field(200, ge=1)
    #: farthest a household's home node may be from its transformer along the streets (m);
    #: default 500 (judgement: urban European LV feeders stay within ~300-500 m for voltage)
    max_lv_feeder_m: float = Field(500.0, gt=0)
    #: one home's peak demand P1 (kW); default 10 (Dickert & Schegner 2010)
    single_home_peak_kw: float = Field(10.0, gt=0)
    #: coincidence factor of infinitely many homes c_inf; default 0.1 (Dickert & Schegner 2010)
    coincidence_inf: float = Field(0.1, gt=0, le=1)
    #: power factor of household loads (inductive); default 0.95 (Dickert & Schegner 2010)
    power_factor: float = Field(0.95, gt=0, le=1)
    #: headroom on the design load when sizing transformers and cables; default 0.2
    #: (judgement: room for load growth, as planners leave)
    sizing_margin: float = Field(0.2, ge=0)
    #: largest voltage drop along an LV network (busbar to road-node or tee bus) at the design
    #: load, % of 0.4 kV; cables on longer-drop paths are thickened; default 5 (judgement: the
    #: EN 50160 +-10 % band shared between the MV network, the transformer and the LV network)
    max_lv_drop_percent: float = Field(5.0, gt=0)
    #: the same along an MV network (substation busbar to transformer), % of 20 kV; default 3
    max_mv_drop_percent: float = Field(3.0, gt=0)
    #: shortest house connection (m): a home on the street centreline (homes placed along
    #: streets are) still has a front yard and a footway between it and the cable; default 10
    min_service_m: float = Field(10.0, gt=0)
    #: longest house connection (m); a home farther from its street gets one of this length
    #: (its point is a large building's centroid or a lot set back from the mapped streets:
    #: the connection is taken to enter the building on its street side); default 100
    #: (judgement: a longer connection would itself be a distribution cable; 98 % of
    #: baltimore's and 96 % of dortmund's building centroids lie within 100 m of their street)
    max_service_m: float = Field(100.0, gt=0)
    #: houses tee onto their street cable at the point nearest the home; tees within this
    #: distance along the street share one tee bus, and tees this close to a road node join
    #: its bus (m); default 5 (judgement: about one row-house frontage)
    tee_group_m: float = Field(5.0, gt=0)
    #: most design load one primary substation carries (MVA, margin included); more load
    #: gets more substations; default 63 (the largest catalogue HV/MV unit)
    max_substation_mva: float = Field(63.0, gt=0)
    #: mapped substations (and HV transformers) closer than this are one site (m); default 500
    substation_merge_m: float = Field(500.0, ge=0)
    #: a mapped substation farther than this from every road node is left out (m); default 2000
    substation_snap_m: float = Field(2000.0, gt=0)
    #: a mapped kiosk or distribution transformer farther than this from every node with
    #: households anchors nothing (m); default 200
    anchor_snap_m: float = Field(200.0, ge=0)
    #: MV busbar voltage the HV/MV transformers' on-load tap changers hold at the design load,
    #: pu (a fixed tap per transformer, chosen for the design load); default 1.02 (judgement:
    #: MV busbars are usually held a little above nominal to leave room for the drops below)
    mv_setpoint_pu: float = Field(1.02, gt=0)
    #: voltage of the feeding 110 kV grid (the slack), pu; default 1.0
    slack_vm_pu: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _checks(self) -> GridConfig:
        if self.max_service_m < self.min_service_m:
            raise ValueError(
                f"max_service_m ({self.max_service_m:g}) must not be below min_service_m "
                f"({self.min_service_m:g})"
            )
        return self


def design_load_kw(n_homes: np.ndarray | int, cfg: GridConfig) -> np.ndarray:
    """Design (after-diversity maximum) demand of ``n_homes`` together, kW (see the module)."""
    n = np.asarray(n_homes, dtype=np.float64)
    c = cfg.coincidence_inf + (1.0 - cfg.coincidence_inf) / np.sqrt(np.maximum(n, 1.0))
    return n * cfg.single_home_peak_kw * c


def need_kva(n: np.ndarray, cfg: GridConfig) -> np.ndarray:
    """Apparent power to size for behind ``n`` households, kVA (design load + margin)."""
    return design_load_kw(n, cfg) / cfg.power_factor * (1.0 + cfg.sizing_margin)


def oltc_taps(
    rows: list[tuple[TransformerType, int]],
    households: np.ndarray,
    charging_mvar: np.ndarray,
    cfg: GridConfig,
) -> np.ndarray:
    """HV-side tap factors that hold each transformer's LV busbar near ``mv_setpoint_pu`` at
    the design load of its ``households`` less its cables' charging (linear drop estimate,
    whole tap steps, within the tap changer's range; 1 without one)."""
    taps = np.ones(len(rows))
    p_mw = design_load_kw(households, cfg) / 1000.0
    q_mvar = p_mw * math.tan(math.acos(cfg.power_factor)) - charging_mvar
    for i, (t, par) in enumerate(rows):
        if t.tap_max == 0:
            continue
        r, x, _, _ = transformer_impedance(t, par)
        drop_pu = (p_mw[i] * r + q_mvar[i] * x) / t.vn_lv_kv**2
        step = t.tap_step_percent / 100.0
        k = round((1.0 / (cfg.mv_setpoint_pu + drop_pu) - 1.0) / step)
        taps[i] = 1.0 + max(-t.tap_max, min(t.tap_max, k)) * step
    return taps


def tree_cable_ranks(
    types: tuple[CableType, ...],
    length_m: np.ndarray,
    households: np.ndarray,
    child: np.ndarray,
    parent: np.ndarray,
    depth_m: np.ndarray,
    budget_percent: float,
    cfg: GridConfig,
) -> np.ndarray:
    """Cable ranks of a tree's edges: rated for the current, then thickened for voltage drop."""
    vn = types[0].vn_kv
    rank = cable_rank(types, need_kva(households, cfg) / (math.sqrt(3) * vn) / 1000.0)
    p_mw = design_load_kw(households, cfg) / 1000.0
    q_mvar = p_mw * math.tan(math.acos(cfg.power_factor))
    return thicken_for_drop(
        types, rank, length_m / 1000.0, p_mw, q_mvar, child, parent, depth_m, budget_percent
    )


def cable_rank(types: tuple[CableType, ...], need_ka: np.ndarray) -> np.ndarray:
    """The thinnest cable rated for each current, as a rank on the ladder: the catalogue
    thinnest to thickest (0..T-1), then 2, 3, ... parallel circuits of the thickest (T, ...)."""
    rating = np.array([c.max_i_ka for c in types])
    idx = np.searchsorted(rating, need_ka, side="left")
    par = np.ceil(np.asarray(need_ka) / rating[-1])
    return np.where(idx < len(types), idx, len(types) - 2 + par).astype(np.int64)


def rank_type(rank: np.ndarray, n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue index, parallel circuits) of each rank."""
    idx = np.minimum(rank, n_types - 1)
    par = np.where(rank < n_types, 1, rank - n_types + 2)
    return idx.astype(np.int64), par.astype(np.int64)


def thicken_for_drop(
    types: tuple[CableType, ...],
    rank: np.ndarray,
    length_km: np.ndarray,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    child: np.ndarray,
    parent: np.ndarray,
    depth_m: np.ndarray,
    budget_percent: float,
) -> np.ndarray:
    """Raise cable ranks on the tree paths whose voltage drop exceeds the budget.

    Edge ``e`` runs from node ``parent[e]`` to ``child[e]`` (a forest; ``depth_m`` orders the
    nodes from their roots) and carries ``p_mw + j q_mvar``. Its drop is the usual linear
    estimate ``(P R + Q X) / V**2``; a node's drop is the sum over its path. Round ``k`` raises
    every cable on a path that breaks the budget to at least rank ``k`` (thin sections first),
    until none does (or after DROP_ROUNDS rounds).
    """
    rank = rank.copy()
    n_types, vn = len(types), types[0].vn_kv
    r_km = np.array([c.r_ohm_per_km for c in types])
    x_km = np.array([c.x_ohm_per_km for c in types])
    edge_of = {int(c): e for e, c in enumerate(child.tolist())}
    up = np.array([edge_of.get(int(p), -1) for p in parent.tolist()], dtype=np.int64)
    order = np.argsort(depth_m[child], kind="stable").tolist()  # parents before children
    up_l = up.tolist()
    for floor in range(1, DROP_ROUNDS + 1):
        idx, par = rank_type(rank, n_types)
        drop = ((p_mw * r_km[idx] + q_mvar * x_km[idx]) * length_km / par / vn**2 * 100).tolist()
        cum = [0.0] * len(drop)
        for e in order:
            cum[e] = drop[e] + (cum[up_l[e]] if up_l[e] >= 0 else 0.0)
        bad = np.flatnonzero(np.asarray(cum) > budget_percent)
        if bad.size == 0:
            break
        on_path = np.zeros(len(rank), dtype=bool)
        for e in bad.tolist():
            while e >= 0 and not on_path[e]:
                on_path[e] = True
                e = up_l[e]
        rank[on_path] = np.maximum(rank[on_path], floor)
    return rank
