"""What a synthesised city grid holds, as a JSON-able summary (``twin grid info``, run KPIs).

Kept apart from :mod:`twin.energy.plot` so a run does not import matplotlib for it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from twin.energy.design import design_load_kw
from twin.energy.synthesis import (
    KIND_LV_CABLE,
    KIND_MV_CABLE,
    KIND_SERVICE,
    LEVEL_LV,
    LEVEL_MV,
    CityGrid,
)


def _key(x: float) -> str:
    return f"{x:g}"


def grid_summary(city: CityGrid) -> dict[str, Any]:
    """What the grid holds, JSON-able: sizes, cable km by level, equipment by rating, feeders."""
    g = city.grid
    kind = city.branch_kind
    km = np.nan_to_num(g.branch_length_km)
    lv_f = city.feeder_level == LEVEL_LV
    mv_f = city.feeder_level == LEVEL_MV
    service_m = km[city.connection_service] * 1000.0  # one per building / street home
    tr_units: Counter[str] = Counter()
    for kva, n in zip(city.trafo_kva.tolist(), city.trafo_parallel.tolist(), strict=True):
        tr_units[_key(kva)] += n
    sub_units: Counter[str] = Counter()
    for mva, n in zip(city.sub_mva.tolist(), city.sub_parallel.tolist(), strict=True):
        sub_units[_key(mva)] += n
    hh_tr = city.trafo_households
    return {
        "name": g.name,
        "buses": g.n_bus,
        "branches": g.n_branch,
        "lines": g.n_branch - g.n_trafo,
        "voltage_levels_kv": sorted({float(v) for v in g.bus_vn_kv}),
        "substations": city.n_substations,
        "substations_mapped": int((city.sub_osm_id >= 0).sum()),
        "substations_idle": int((city.sub_households == 0).sum()),
        "mapped_power_features_used": int(city.sub_merged.sum()),
        "hv_mv_transformers_by_mva": dict(sorted(sub_units.items(), key=lambda kv: float(kv[0]))),
        "mv_lv_transformers": city.n_transformers,
        "mv_lv_transformers_by_kva": dict(sorted(tr_units.items(), key=lambda kv: float(kv[0]))),
        "mv_lv_transformers_anchored": int((city.trafo_anchor_osm_id >= 0).sum()),
        "mv_lv_transformers_dedicated": int(city.trafo_dedicated.sum()),
        "installed_mv_lv_mva": float((city.trafo_kva * city.trafo_parallel).sum() / 1000.0),
        "mv_km": float(km[kind == KIND_MV_CABLE].sum()),
        "lv_km": float(km[kind == KIND_LV_CABLE].sum()),
        "lv_spur_km": float(km[(kind == KIND_LV_CABLE) & city.branch_spur].sum()),
        "service_km": float(km[kind == KIND_SERVICE].sum()),
        "tee_buses": int(((city.bus_level == LEVEL_LV) & (city.bus_node < 0)).sum())
        - city.n_connections,
        "service_connections": city.n_connections,
        "lv_m_per_household": float(km[kind == KIND_LV_CABLE].sum() * 1000.0)
        / max(city.n_households, 1),
        "service_m_per_connection": float(service_m.mean()) if len(service_m) else 0.0,
        "households": city.n_households,
        "households_connected": int((city.household_bus >= 0).sum()),
        "households_per_transformer_mean": float(hh_tr.mean()) if len(hh_tr) else 0.0,
        "households_per_transformer_max": int(hh_tr.max(initial=0)),
        "households_per_transformer_min": int(hh_tr.min()) if len(hh_tr) else 0,
        "design_load_mw": float(design_load_kw(city.n_households, city.cfg) / 1000.0),
        "mv_feeders": int(mv_f.sum()),
        "lv_feeders": int(lv_f.sum()),
        "max_mv_feeder_m": float(city.feeder_length_m[mv_f].max(initial=0.0)),
        "max_lv_feeder_m": float(city.feeder_length_m[lv_f].max(initial=0.0)),
        "median_service_m": float(np.median(service_m)) if len(service_m) else 0.0,
        "max_service_m": float(service_m.max(initial=0.0)),
        "services_at_max": int((service_m >= city.cfg.max_service_m * (1 - 1e-12)).sum()),
        "timings_s": dict(city.timings_s),
    }
