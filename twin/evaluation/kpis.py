"""The KPIs a policy is judged on, from one finished run, with the direction that is better.

Signals (from the trip and link tables):

- ``mean_delay_s``: mean delay per trip due in the run: time lost on the network (SUMO's time
  loss: driving below the desired speed, waiting included) plus the time it waited to enter
  after its planned departure; a trip still waiting at the end counts its wait so far, one
  still driving its loss so far (so a policy cannot look good by leaving trips out);
- ``p95_delay_s``: the 95th percentile of the same; ``mean_trip_s``: mean duration of the
  trips completed; ``throughput``: trips completed; ``stops``: mean stops per trip entered;
  ``max_queue_veh``: the longest queue on any link;
- fairness: ``approach_delay_p95_s`` and ``approach_delay_worst_s``: stopped delay per vehicle
  (halted vehicle-seconds over vehicles through) of each approach of a signalised junction
  with at least MIN_APPROACH_VEHICLES vehicles, its 95th percentile and worst across
  approaches; ``district_delay_worst_s``: the worst mean delay per trip by origin district
  (DISTRICT_M squares, at least MIN_DISTRICT_TRIPS trips).

Charging (from the energy KPIs and the EV table): ``peak_trafo_loading_pct``,
``trafo_hours_above_rating``, ``energy_cost`` (in the run's currency, ``[energy] currency``:
the run's ``energy.cost_<currency>``), ``co2_kg``, ``ev_unmet_kwh`` (target energy missing at
departures), ``ev_demand_kwh`` (EV energy drawn plus unmet: what the EVs asked for),
``min_voltage_pu`` and, for fairness, ``household_unmet_worst_kwh``.

``energy_cost_usd`` (the name before currencies) and any ``energy_cost_<currency>`` still name
``energy_cost`` in requirements, when the runs are priced in that currency
(:func:`resolve_kpi`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.evaluation.requirements import RequirementError
from twin.network.road import RoadNet
from twin.results import Results

MIN_APPROACH_VEHICLES = 20
MIN_DISTRICT_TRIPS = 30
DISTRICT_M = 1000.0

#: KPI name -> True when lower is better
LOWER_IS_BETTER: dict[str, bool] = {
    "mean_delay_s": True,
    "p95_delay_s": True,
    "mean_trip_s": True,
    "throughput": False,
    "stops": True,
    "max_queue_veh": True,
    "approach_delay_p95_s": True,
    "approach_delay_worst_s": True,
    "district_delay_worst_s": True,
    "peak_trafo_loading_pct": True,
    "trafo_hours_above_rating": True,
    "energy_cost": True,
    "co2_kg": True,
    "ev_unmet_kwh": True,
    "ev_demand_kwh": True,
    "min_voltage_pu": False,
    "household_unmet_worst_kwh": True,
}
#: the unit of ``energy_cost`` in UNITS: the run's currency (:func:`kpi_unit`)
CURRENCY_UNIT = "currency"
UNITS = {
    "mean_delay_s": "s",
    "p95_delay_s": "s",
    "mean_trip_s": "s",
    "throughput": "trips",
    "stops": "stops/trip",
    "max_queue_veh": "veh",
    "approach_delay_p95_s": "s",
    "approach_delay_worst_s": "s",
    "district_delay_worst_s": "s",
    "peak_trafo_loading_pct": "%",
    "trafo_hours_above_rating": "h",
    "energy_cost": CURRENCY_UNIT,
    "co2_kg": "kg",
    "ev_unmet_kwh": "kWh",
    "ev_demand_kwh": "kWh",
    "min_voltage_pu": "pu",
    "household_unmet_worst_kwh": "kWh",
}
SIGNAL_KPIS = tuple(list(LOWER_IS_BETTER)[:9])
CHARGING_KPIS = tuple(list(LOWER_IS_BETTER)[9:])
#: the old name of ``energy_cost`` and its currency-named forms (``energy_cost_eur``)
_COST_PREFIX = "energy_cost_"


def kpi_unit(kpi: str, currency: str | None) -> str:
    """The unit of ``kpi``; ``energy_cost`` is in ``currency`` (the runs' currency)."""
    unit = UNITS[kpi]
    return (currency or "unknown currency") if unit == CURRENCY_UNIT else unit


def resolve_kpi(name: str, currency: str | None) -> str:
    """The KPI a name means: ``energy_cost_usd`` (the old name) or ``energy_cost_eur`` is
    ``energy_cost`` when the runs are priced in that currency (``currency``: theirs, None when
    unknown); RequirementError when they are not, so that a USD threshold is never checked
    against a EUR cost. Other names are returned as given."""
    if not name.startswith(_COST_PREFIX) or name in LOWER_IS_BETTER:
        return name
    asked = name[len(_COST_PREFIX) :].upper()
    if currency is not None and asked != currency:
        raise RequirementError(
            f"KPI {name!r} is in {asked} but these runs are priced in {currency}; name it "
            "energy_cost (the cost in the runs' currency)"
        )
    return "energy_cost"


def run_currency(results: Results) -> str | None:
    """The currency of the run's energy cost (``[energy] currency``); None without one."""
    for name, _, unit in results.kpis:
        if name.startswith("energy.cost_"):
            return unit
    return None


def trip_delays_s(trips: pd.DataFrame, end_s: float) -> np.ndarray:
    """Delay of every trip due by ``end_s`` (see the module docstring)."""
    due = trips["depart_plan_s"].to_numpy() <= end_s
    status = trips["status"].astype(str).to_numpy()
    entered = np.isin(status, ("running", "arrived"))
    wait = np.where(
        entered,
        trips["depart_s"].to_numpy() - trips["depart_plan_s"].to_numpy(),
        end_s - trips["depart_plan_s"].to_numpy(),
    )
    loss = np.where(entered, trips["time_loss_s"].to_numpy(), 0.0)
    keep = due & (status != "unroutable")
    return (np.maximum(wait, 0.0) + loss)[keep]


def signal_kpis(results: Results, net: RoadNet, end_s: float) -> dict[str, float]:
    trips = results.tables["trips"]
    delay = trip_delays_s(trips, end_s)
    status = trips["status"].astype(str)
    done = status == "arrived"
    entered = status.isin(("running", "arrived"))
    out = {
        "mean_delay_s": float(delay.mean()) if len(delay) else np.nan,
        "p95_delay_s": float(np.percentile(delay, 95)) if len(delay) else np.nan,
        "mean_trip_s": float(trips.loc[done, "duration_s"].mean()),
        "throughput": float(done.sum()),
        "stops": float(trips.loc[entered, "stops"].mean()),
    }
    links = results.tables.get("links")
    approach = np.full(0, np.nan)
    if links is not None and len(links):
        span = (links["t_end_s"] - links["t_start_s"]).to_numpy()
        per = (
            pd.DataFrame(
                {
                    "link": links["link"].to_numpy(),
                    "halt_s": links["mean_queue_veh"].to_numpy() * span,
                    "veh": links["flow_vph"].to_numpy() * span / 3600.0,
                }
            )
            .groupby("link")[["halt_s", "veh"]]
            .sum()
        )
        out["max_queue_veh"] = float(links["max_queue_veh"].max())
        link = per.index.to_numpy()
        signal_approach = net.node_signal[net.link_to[link]] >= 0
        busy = per["veh"].to_numpy() >= MIN_APPROACH_VEHICLES
        sel = signal_approach & busy
        approach = per["halt_s"].to_numpy()[sel] / per["veh"].to_numpy()[sel]
    else:
        out["max_queue_veh"] = np.nan
    out["approach_delay_p95_s"] = float(np.percentile(approach, 95)) if len(approach) else np.nan
    out["approach_delay_worst_s"] = float(approach.max()) if len(approach) else np.nan
    due = (trips["depart_plan_s"].to_numpy() <= end_s) & (status != "unroutable").to_numpy()
    origin = trips["origin_node"].to_numpy()[due]
    cell = np.floor(net.node_x_m[origin] / DISTRICT_M).astype(np.int64) * 1_000_003 + np.floor(
        net.node_y_m[origin] / DISTRICT_M
    ).astype(np.int64)
    by = pd.DataFrame({"cell": cell, "delay": delay}).groupby("cell")["delay"].agg(["mean", "size"])
    by = by[by["size"] >= MIN_DISTRICT_TRIPS]
    out["district_delay_worst_s"] = float(by["mean"].max()) if len(by) else np.nan
    return out


def charging_kpis(results: Results) -> dict[str, float]:
    k = results.kpi
    evs = results.tables.get("evs")
    unmet = float(k("energy.ev_unmet_departure_kwh"))
    worst = np.nan
    if evs is not None and len(evs):
        worst = float(evs.groupby("household")["unmet_departure_kwh"].sum().max())
    return {
        "peak_trafo_loading_pct": k("energy.trafo_loading_max_percent"),
        "trafo_hours_above_rating": k("energy.trafo_hours_above_rating"),
        "energy_cost": k(f"energy.cost_{str(run_currency(results)).lower()}"),
        "co2_kg": k("energy.co2_kg"),
        "ev_unmet_kwh": unmet,
        "ev_demand_kwh": float(k("energy.ev_kwh")) + unmet,
        "min_voltage_pu": k("energy.v_min_pu"),
        "household_unmet_worst_kwh": worst,
    }


def run_kpis(results: Results, net: RoadNet, end_s: float) -> dict[str, float]:
    """Every KPI the run has the components for."""
    out: dict[str, float] = {}
    if "trips" in results.tables:
        out.update(signal_kpis(results, net, end_s))
    names = {name for name, _, _ in results.kpis}
    if "energy.trafo_loading_max_percent" in names:
        out.update(charging_kpis(results))
    return out
