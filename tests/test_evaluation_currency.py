"""The evaluation's energy cost KPI in the run's currency: ``energy_cost``, with the currency
as its unit, and the old name ``energy_cost_usd`` still meaning it for USD runs only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from twin.evaluation.kpis import CHARGING_KPIS, kpi_unit, run_currency, run_kpis
from twin.evaluation.report import to_json, to_markdown
from twin.evaluation.requirements import RequirementError
from twin.evaluation.runner import Evaluation
from twin.model import CityModel
from twin.region import PRESETS
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_a_eur_run_reports_its_energy_cost_in_euros():
    sc = load_scenario(ROOT / "scenarios" / "dortmund.toml").with_overrides(
        {"time.duration": "10min", "time.report_interval": "5min"}
    )
    model = CityModel(sc)
    results = model.run(progress=False)
    assert model.region.preset == "de" and model.scenario.energy.currency == "EUR"
    assert run_currency(results) == "EUR"
    kpis = run_kpis(results, model.network, model.end_s)
    assert "energy_cost_usd" not in kpis
    assert kpis["energy_cost"] == results.kpi("energy.cost_eur") > 0
    imported = results.kpi("energy.import_kwh")
    assert kpis["energy_cost"] == pytest.approx(imported * PRESETS["de"].price_per_kwh)


def evaluation(currency: str | None) -> Evaluation:
    """Two policies over three seeds, charging KPIs only, priced in ``currency``."""
    rows = []
    for seed in range(3):
        for policy, cost in (("smart", 90.0 + seed), ("uncontrolled", 100.0 + seed)):
            row = {"scenario": "s", "seed": seed, "policy": policy, "energy_cost": cost}
            row["co2_kg"] = 1.0
            if currency is not None:
                row["currency"] = currency
            rows.append(row)
    return Evaluation(["smart"], ["uncontrolled"], "charging", pd.DataFrame(rows))


def test_the_cost_kpi_takes_the_runs_currency_as_its_unit():
    assert "energy_cost" in CHARGING_KPIS and "energy_cost_usd" not in CHARGING_KPIS
    eur = evaluation("EUR")
    assert eur.currency == "EUR" and eur.unit("energy_cost") == "EUR"
    assert eur.unit("co2_kg") == "kg"
    assert "| energy_cost (EUR, lower is better) |" in to_markdown(eur)
    data = json.loads(json.dumps(to_json(eur)))
    assert data["kpis"]["energy_cost"] == {"unit": "EUR", "lower_is_better": True}
    assert kpi_unit("energy_cost", None) == "unknown currency"


def test_the_old_name_means_the_cost_only_in_its_own_currency():
    usd = evaluation("USD")
    assert usd.check(["energy_cost_usd <= 0.95 * uncontrolled"])  # the name before currencies
    assert usd.value("smart", "energy_cost_usd") == usd.value("smart", "energy_cost") == 91.0
    eur = evaluation("EUR")
    assert eur.check(["energy_cost_eur <= 0.95 * uncontrolled", "energy_cost < 95"])
    assert eur.p_improvement("smart", "energy_cost_eur", "uncontrolled") == 1.0
    with pytest.raises(RequirementError, match="'energy_cost_usd' is in USD but these runs are"):
        eur.check(["energy_cost_usd <= 0.95 * uncontrolled"])
    mixed = pd.concat([evaluation("EUR").runs, evaluation("USD").runs.assign(scenario="t")])
    both = Evaluation(["smart"], ["uncontrolled"], "charging", mixed)
    assert both.unit("energy_cost") == "EUR, USD"
    with pytest.raises(RequirementError, match="priced in EUR, USD"):
        both.value("smart", "energy_cost_eur")
