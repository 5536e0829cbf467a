"""The energy component in a CityModel: balance, coupling to traffic, weather, EVs, seeds."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twin.energy.config import EnergyConfig
from twin.energy.consumers import Consumers
from twin.model import CityModel
from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions
from twin.population.config import PopulationConfig
from twin.population.synthesis import day_legs, synthesize
from twin.scenario import load_scenario
from twin.traffic.state import ARRIVED, SCHEDULED

MAPS = Path(__file__).resolve().parents[1] / "maps"
BALTIMORE = MAPS / "baltimore.osm.pbf"


def scenario(tmp_path, *, start="16:00", duration="3h", population="", energy="", traffic=True):
    path = tmp_path / "energy.toml"
    path.write_text(
        f'seed = 7\n[map]\nfile = "{BALTIMORE}"\n[time]\nstart = "{start}"\n'
        f'duration = "{duration}"\nreport_interval = "30min"\n'
        f"[traffic]\nenabled = {'true' if traffic else 'false'}\n"
        f"[population]\nhouseholds = 1500\n{population}\n[energy]\n{energy}\n"
    )
    return load_scenario(path)


@pytest.fixture(scope="module")
def evening(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evening")
    model = CityModel(scenario(tmp, population="ev_share = 0.5"))
    return model, model.run(progress=False)


@pytest.fixture(scope="module")
def evening_no_ev(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evening-no-ev")
    return CityModel(scenario(tmp, population="ev_share = 0.0")).run(progress=False)


def test_energy_balance_at_every_tick(evening):
    _, res = evening
    s = res.tables["energy"]
    assert len(s) == 180 and s["substation_p_kw"].notna().all()
    # the feeding grid supplies the loads plus the losses, snapshot by snapshot
    np.testing.assert_allclose(
        s["substation_p_kw"], s["loads_p_kw"] + s["losses_kw"], rtol=1e-9, atol=1e-6
    )
    # the loads are the households' draw: base + HVAC + EV - PV
    np.testing.assert_allclose(s["loads_p_kw"], s["households_kw"], rtol=1e-9)
    parts = s["base_kw"] + s["hvac_kw"] + s["ev_kw"] - s["pv_kw"]
    np.testing.assert_allclose(s["households_kw"], parts, rtol=1e-9)
    assert (s["losses_kw"] > 0).all()
    assert res.kpi("energy.import_kwh") == pytest.approx(
        res.kpi("energy.households_kwh") + res.kpi("energy.losses_kwh"), rel=1e-9
    )


def test_base_case_grid_is_plausible(evening_no_ev):
    """Without EVs, on a summer evening, the synthesised grid carries its load."""
    res = evening_no_ev
    assert res.kpi("energy.trafos_overloaded") == 0
    assert res.kpi("energy.line_loading_max_percent") < 100
    assert 0.9 <= res.kpi("energy.v_min_pu") <= 1.0
    assert res.kpi("energy.house_minutes_outside_en50160") == 0


def test_same_seed_same_energy_results(tmp_path, evening):
    _, res = evening
    again = CityModel(scenario(tmp_path, population="ev_share = 0.5")).run(progress=False)
    a, b = res.tables["energy"], again.tables["energy"]
    assert a.drop(columns=["sweeps"]).equals(b.drop(columns=["sweeps"]))


def test_evs_raise_the_evening_transformer_peak(evening, evening_no_ev):
    _, with_evs = evening
    none = evening_no_ev
    assert none.kpi("energy.ev_kwh") == 0
    assert with_evs.kpi("energy.ev_kwh") > 0.2 * with_evs.kpi("energy.base_kwh")
    assert with_evs.kpi("energy.peak_kw") > 1.15 * none.kpi("energy.peak_kw")
    assert with_evs.kpi("energy.trafo_loading_max_percent") > none.kpi(
        "energy.trafo_loading_max_percent"
    )


def test_a_heat_wave_raises_the_cooling_load(tmp_path):
    kw = {"start": "12:00", "duration": "3h", "traffic": False}
    summer = CityModel(scenario(tmp_path, energy='weather = "summer"', **kw)).run(progress=False)
    heat = CityModel(scenario(tmp_path, energy='weather = "heatwave"', **kw)).run(progress=False)
    assert heat.kpi("energy.hvac_kwh") > 1.3 * summer.kpi("energy.hvac_kwh")
    assert heat.kpi("energy.hvac_peak_kw") > summer.kpi("energy.hvac_peak_kw")
    assert heat.kpi("energy.peak_kw") > summer.kpi("energy.peak_kw")


def test_an_ev_arriving_later_starts_charging_later():
    """The traffic engine's arrival time is the plug-in time: delay it, charging moves."""
    net = load_roadnet(BALTIMORE, BuildOptions())
    data = synthesize(net, BALTIMORE, PopulationConfig(households=400, ev_share=1.0), seed=3)
    legs = day_legs(data, data.default_tours)
    cfg = EnergyConfig(ev_start_soc=(0.3, 0.3))

    def first_charge_s(delay_s: float) -> tuple[float, float]:
        c = Consumers(data, legs, cfg, 3, start_s=0.0, end_s=86400.0, lon_lat=(-76.6, 39.3))
        el = c.ev_legs
        # the first EV's first arrival home, simulated by "the traffic engine" (a fleet of 1)
        i = np.flatnonzero(el.reaches_home & (el.ev == 0))[0]
        c.attach_traffic(np.array([el.leg[i]]))
        arrive = el.plan_arrive_s[i] + delay_s
        fleet = SimpleNamespace(
            state=np.array([SCHEDULED], dtype=np.int8),
            depart_s=np.array([el.plan_depart_s[i]]),
            arrive_s=np.array([np.nan]),
            dist_m=np.array([3000.0]),
        )
        start = np.inf
        for t in np.arange(60.0, 86400.0 + 1, 60.0):
            if t > arrive and fleet.state[0] != ARRIVED:
                fleet.state[0] = ARRIVED
                fleet.arrive_s[0] = arrive
            c.ev_updates(t, fleet)
            ev_kw = c.draw_kw(t)[2]
            if ev_kw[c.ev_household[0]] > 0 and not np.isfinite(start):
                start = t - 60.0
        return start, arrive

    on_time, arrive0 = first_charge_s(0.0)
    late, arrive1 = first_charge_s(1800.0)
    assert np.isfinite(on_time) and np.isfinite(late)
    assert on_time <= arrive0 < on_time + 60.0  # charging begins in the tick of the arrival
    assert late <= arrive1 < late + 60.0
    assert late - on_time == pytest.approx(1800.0, abs=60.0)


def test_energy_needs_the_population(tmp_path):
    from twin.errors import ScenarioError

    path = tmp_path / "bad.toml"
    path.write_text(
        f'[map]\nfile = "{BALTIMORE}"\n[demand]\nkind = "random"\n[population]\nenabled = false\n'
    )
    with pytest.raises(ScenarioError, match=r"energy\.enabled needs population"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('weather = "tropical"', "energy.weather"),
        ('tick = "90s"', "tick must be whole minutes"),
        ("price_usd_per_kwh = [0.1, 0.2]", "24 hourly values"),
        ("ev_start_soc = [0.9, 0.2]", "ev_start_soc"),
        ("pv_share = 2", "energy.pv_share"),
    ],
)
def test_bad_energy_keys_name_the_key(tmp_path, text, message):
    from twin.errors import ScenarioError

    path = tmp_path / "bad.toml"
    path.write_text(f'[map]\nfile = "{BALTIMORE}"\n[energy]\n{text}\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in str(info.value) and "bad.toml" in str(info.value)


def test_evs_plug_in_when_the_traffic_engine_gets_them_home(evening):
    """In a model run, each EV's last plug-in time is its car's last simulated arrival home."""
    model, res = evening
    c = model.energy.consumers
    el = c.ev_legs
    trips = res.tables["trips"].set_index("trip_id")
    checked = 0
    for e in range(len(c.evs)):
        mine = np.flatnonzero((el.ev == e) & el.reaches_home & el.arrived & (el.sim >= 0))
        if len(mine) == 0:
            continue
        legs = el.leg[mine]
        arrive = trips.loc[legs, "arrive_s"].to_numpy()
        if not np.isfinite(arrive).all():
            continue
        last = np.max(arrive)
        # a later planned (unsimulated) arrival would re-plug: only EVs whose last arrival
        # is a simulated one are compared
        others = (el.ev == e) & el.reaches_home & el.arrived & (el.sim < 0)
        if others.any() and el.plan_arrive_s[others].max() > last:
            continue
        assert c.evs.plug_s[e] == last
        checked += 1
    assert checked > 50


def test_a_power_flow_that_does_not_converge_is_recorded_and_the_run_goes_on(
    tmp_path, monkeypatch, caplog
):
    """Snapshots the solver gives up on (here forced: every 7th) are counted, warned about
    with their time, and left out of the voltage and loading figures."""
    import twin.energy.component as comp

    real = comp.solve
    forced = []

    def flaky(grid, **kw):
        res = real(grid, **kw)
        res.n_iter[::7] = -1  # as the kernel reports a snapshot that did not converge
        res.vm_pu[::7] = 0.1  # and whatever voltages it stopped at
        forced.append(len(res.n_iter[::7]))
        return res

    monkeypatch.setattr(comp, "solve", flaky)
    sc = scenario(tmp_path, duration="1h", traffic=False)
    with caplog.at_level("WARNING"):
        res = CityModel(sc).run(progress=False)
    assert res.kpi("energy.power_flow_not_converged") == sum(forced) > 0
    assert "power flow did not converge" in caplog.text and "first at 16:00" in caplog.text
    assert res.kpi("energy.v_min_pu") > 0.8  # the 0.1 pu of the failed snapshots is left out
    assert res.tables["energy"]["v_min_pu"].isna().sum() == sum(forced)


def test_an_ev_gets_home_with_its_whole_tour_off_the_battery():
    """Energy conservation on the battery: at each arrival home the whole tour comes off it
    (every leg since leaving home, the distance driven beyond the map's edge included), not
    only the last leg. Checked against the legs table grouped by tour."""
    net = load_roadnet(BALTIMORE, BuildOptions())
    data = synthesize(net, BALTIMORE, PopulationConfig(households=400, ev_share=1.0), seed=5)
    legs = day_legs(data, data.default_tours)
    cfg = EnergyConfig(ev_start_soc=(0.9, 0.9), ev_battery_kwh=1000.0)  # never runs empty
    c = Consumers(data, legs, cfg, 5, start_s=0.0, end_s=86400.0, lon_lat=(-76.6, 39.3))
    el, evs = c.ev_legs, c.evs
    soc0 = evs.soc_kwh.copy()
    for t in np.arange(60.0, 86400.0 + 1, 60.0):  # no draw_kw: nothing charges
        c.ev_updates(t, None)
    used_kwh = soc0 - evs.soc_kwh
    # independently: per tour of an EV's car that got home in the day, all its legs' distance
    rows = pd.DataFrame(
        {
            "ev": el.ev,
            "tour": legs.tour[el.leg],
            "m": el.plan_dist_m + legs.outside_pre_m[el.leg] + legs.outside_post_m[el.leg],
            "home_by_s": np.where(el.reaches_home, el.plan_arrive_s, -np.inf),
        }
    )
    tours = rows.groupby(["ev", "tour"]).agg(m=("m", "sum"), home_s=("home_by_s", "max"))
    done = tours[tours["home_s"] < 86400.0].groupby(level="ev")["m"].sum()
    expected = np.zeros(len(used_kwh))
    expected[done.index.to_numpy()] = done.to_numpy() / 1000.0 * evs.kwh_per_km[done.index]
    assert (legs.outside_pre_m[el.leg] + legs.outside_post_m[el.leg]).sum() > 0  # some go out
    assert (tours.groupby(level="ev").size() > 0).all()
    np.testing.assert_allclose(used_kwh, expected, rtol=1e-9, atol=1e-9)
    # more than the legs that reach home alone: the drive out counts too
    last_legs_kwh = (el.plan_dist_m * el.reaches_home * (el.plan_arrive_s < 86400.0)).sum()
    assert used_kwh.sum() > 1.3 * last_legs_kwh / 1000.0 * evs.kwh_per_km.mean()


def test_the_power_flow_solved_beside_the_traffic_gives_the_same_results(tmp_path):
    """With two Numba threads each batch of ticks is solved on a second thread while the
    traffic goes on; with one, in turn. Every table and reading is the same bit for bit, and
    each recording's grid reading is the last solved tick before it (filled in once solved)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two Numba threads")
    sc = scenario(tmp_path, duration="2h", population="ev_share = 0.3")
    before = numba.get_num_threads()
    runs = {}
    try:
        for threads in (1, 2, 2):  # two models in turn on two threads share the one solver
            numba.set_num_threads(threads)
            model = CityModel(sc)
            runs[threads] = model.run(progress=False)
            assert model.energy._beside == (threads > 1)
    finally:
        numba.set_num_threads(before)
    import threading

    assert sum(t.name.startswith("twin-powerflow") for t in threading.enumerate()) == 1
    one, two = runs[1], runs[2]
    for name in ("energy", "transformers", "transformer_loading", "substations"):
        pd.testing.assert_frame_equal(one.tables[name], two.tables[name])
    pd.testing.assert_frame_equal(one.timeseries, two.timeseries)
    energy_kpis = [(k, v) for k, v, _ in one.kpis if k.startswith("energy.")]
    assert energy_kpis == [(k, v) for k, v, _ in two.kpis if k.startswith("energy.")]
    ticks = two.tables["energy"].set_index("t_s")
    readings = two.timeseries.set_index("time_s")["energy_v_min_pu"].iloc[1:]  # 0: no tick yet
    tick_s = float(ticks.index[1] - ticks.index[0])
    expected = ticks.loc[readings.index - tick_s, "v_min_pu"].to_numpy()
    assert len(readings) == 4 and np.isfinite(readings).all()
    np.testing.assert_array_equal(readings.to_numpy(), expected)
