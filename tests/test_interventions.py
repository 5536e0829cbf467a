"""What-ifs in scenario files: each intervention changes what it should, and only that.

The runs are Baltimore's first 15-30 minutes (a few seconds each); references are the same
scenario without the intervention (same seed), plus analytic checks (a transformer's loading
scales inversely with its rating; unserved energy equals the household draw that vanished).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomli_w
from test_region import BALTIMORE, DORTMUND, net_at

from twin.errors import ScenarioError
from twin.model import CityModel
from twin.region import PRESETS, apply_region
from twin.scenario import load_scenario
from twin.timefmt import format_clock

ROOT = Path(__file__).resolve().parent.parent
SHORT = ROOT / "scenarios" / "baltimore-short.toml"
# a ~1 km stretch of Eastern Avenue (20 links; closing it cuts off a few mid-block nodes)
EASTERN_BBOX = [-76.5675, 39.2841, -76.5563, 39.2902]
CLOSURE = {
    "kind": "close_road",
    "street": "Eastern Avenue",
    "bbox": EASTERN_BBOX,
    "at": "06:35",
    "until": "06:50",
}


def scenario(*interventions: dict, energy: bool = False, **over):
    sc = load_scenario(SHORT)
    keys = {"time.duration": "25min", "time.report_interval": "5min", "energy.enabled": energy}
    keys.update(over)
    return sc.with_overrides({**keys, "intervention": list(interventions)})


# -- the scenario file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"kind": "close_the_road"}, "is not one of close_road, speed_limit"),
        ({"kind": "close_road"}, "give the roads"),
        ({"kind": "close_road", "street": "X", "stret": "Y"}, "stret: unknown key"),
        ({"kind": "ev_adoption", "share": 0.5, "at": "07:00"}, "from the start of the run only"),
        ({"kind": "weather", "weather": "hot"}, "'heatwave'"),
        ({"kind": "close_road", "way": [1], "at": "07:00", "until": "06:50"}, "until must be"),
        ({"kind": "demand", "scale": -1}, "scale"),
        ({"kind": "transformer_outage"}, "transformers = [ids] or feeder"),
        ({"kind": "event", "place": [0, 0], "trips": 10}, "give at"),
        ({"kind": "tariff", "price_usd_per_kwh": 0.3}, "give at and until"),
        ({"kind": "tariff", "price_per_kwh": 0.3}, "give at and until"),
        (
            {"kind": "tariff", "price_per_kwh": 0.3, "price_usd_per_kwh": 0.3},
            "price_usd_per_kwh and price_per_kwh both given",
        ),
        (
            {"kind": "tariff", "price_usd_per_kwh": 0.3, "currency": "EUR"},
            "price_usd_per_kwh is in USD but currency = 'EUR'",
        ),
    ],
)
def test_invalid_interventions_are_clear_errors(table, expected):
    with pytest.raises(ScenarioError, match="intervention 1") as err:
        load_scenario(SHORT).with_overrides({"intervention": [table]})
    assert expected in str(err.value)


def test_interventions_round_trip_through_a_file(tmp_path):
    sc = scenario(
        CLOSURE,
        {"kind": "ev_adoption", "share": 0.5},
        {"kind": "tariff", "price_per_kwh": 0.4, "at": "17:00", "until": "19:00"},
    )
    path = tmp_path / "whatif.toml"
    path.write_text(tomli_w.dumps(sc.to_toml_dict()))
    again = load_scenario(path)
    assert again.intervention == sc.intervention
    assert again.population.ev_share == 0.5
    # the file holds every key, the price too (the default's): the tariff is laid over it
    assert again.energy.price_per_kwh[17:19] == (0.4, 0.4)
    assert again.energy.price_per_kwh[16] == again.energy.price_per_kwh[19] == 0.16
    # baltimore.toml leaves the price to the region: the tariff waits for the region's
    assert not sc.is_set("energy.price_per_kwh")
    out, _ = apply_region(sc, net_at(*BALTIMORE))
    assert out.energy.currency == "USD" and out.energy == again.energy
    assert apply_region(out, net_at(*BALTIMORE))[0].energy == out.energy  # laid over once


def test_a_tariff_over_the_scenarios_own_price_under_either_name():
    tariff = {"kind": "tariff", "price_per_kwh": 0.4, "at": "17:00", "until": "19:00"}
    for key in ("price_per_kwh", "price_usd_per_kwh"):
        sc = load_scenario(SHORT).with_overrides({f"energy.{key}": 0.2})
        sc = sc.with_overrides({"intervention": [tariff]})
        assert sc.energy.price_per_kwh[17:19] == (0.4, 0.4) and sc.energy.price_per_kwh[0] == 0.2
        with pytest.raises(ScenarioError, match=r"set by intervention 1 \(tariff\)"):
            sc.with_overrides({f"energy.{key}": 0.3})


def test_a_tariff_on_a_eur_scenario_is_in_euros():
    de = PRESETS["de"]
    dortmund = load_scenario(ROOT / "scenarios" / "dortmund.toml")
    tariff = {"kind": "tariff", "price_per_kwh": 0.6, "at": "07:00", "until": "09:00"}
    sc = dortmund.with_overrides({"intervention": [tariff]})
    out, region = apply_region(sc, net_at(*DORTMUND))
    assert region.preset == "de" and out.energy.currency == "EUR"
    hourly = out.energy.price_per_kwh
    assert hourly[7:9] == (0.6, 0.6)
    assert hourly[6] == hourly[9] == de.price_per_kwh  # the rest of the day: the region's price
    assert out.intervention[0].describe("EUR") == "tariff 0.6 EUR/kWh"
    # the old key is a USD price: a EUR run refuses it rather than read dollars as euros
    old = {**tariff, "price_usd_per_kwh": 0.6}
    del old["price_per_kwh"]
    usd = dortmund.with_overrides({"intervention": [old]})
    assert usd.intervention[0].currency == "USD"
    with pytest.raises(ScenarioError, match=r"in USD .* the run is priced in EUR"):
        apply_region(usd, net_at(*DORTMUND))
    # a scenario's own price (in the local currency) takes the tariff at load
    own = dortmund.with_overrides({"energy.price_per_kwh": 0.3})
    own = own.with_overrides({"intervention": [tariff]})
    out, _ = apply_region(own, net_at(*DORTMUND))
    assert out.energy.currency == "EUR" and out.energy.price_per_kwh[6:9] == (0.3, 0.6, 0.6)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"kind": "close_road", "street": "Eastern Avnue"}, "did you mean 'Eastern Avenue'"),
        ({"kind": "close_road", "way": [1]}, "OSM way 1 is not a road of this map"),
        (
            {"kind": "close_road", "street": "Eastern Avenue", "bbox": [0, 0, 1, 1]},
            "no link of Eastern Avenue",
        ),
        ({"kind": "close_road", "way": [266323372], "at": "05:00"}, "outside the run"),
        (
            {"kind": "event", "place": [-70.0, 39.28], "trips": 5, "at": "06:40"},
            "from the nearest road",
        ),
    ],
)
def test_targets_that_do_not_exist_are_named(table, expected):
    with pytest.raises(ScenarioError, match="intervention 1") as err:
        CityModel(scenario(table))
    assert expected in str(err.value)


def test_unknown_transformer_is_named():
    table = {"kind": "transformer_outage", "transformers": [99_999]}
    with pytest.raises(ScenarioError, match="transformer 99999 does not exist"):
        CityModel(scenario(table, energy=True, **{"time.duration": "5min"}))


def test_an_ambiguous_street_name_asks_for_a_bbox():
    from twin.interventions.config import CloseRoad
    from twin.interventions.targets import road_links

    net = CityModel(scenario()).network
    names = np.array(net.meta["link_names"])
    # a name used by streets far apart: make one by renaming two distant links
    a, b = np.argmin(net.node_lon[net.link_from]), np.argmax(net.node_lon[net.link_from])
    names[[a, b]] = "Twin Street"
    net.meta["link_names"] = names.tolist()
    with pytest.raises(ScenarioError, match=r"names 2 streets .* add bbox"):
        road_links(net, CloseRoad(street="Twin Street"), "here")
    w, e = net.node_lon[net.link_from[a]], net.node_lon[net.link_to[a]]
    s, n = net.node_lat[net.link_from[a]], net.node_lat[net.link_to[a]]
    box = (min(w, e) - 1e-4, min(s, n) - 1e-4, max(w, e) + 1e-4, max(s, n) + 1e-4)
    assert road_links(net, CloseRoad(street="Twin Street", bbox=box), "here").tolist() == [a]


# -- roads ----------------------------------------------------------------------------------


def _run_watching(sc, links):
    """Run ``sc`` step by step; per reporting time, the trips running on ``links``, and the
    final model."""
    model = CityModel(sc)
    seen = {}
    while not model.finished:
        model.step()
        fl = model.traffic.sim.fleet
        run = fl.run_list[: fl.run_count[0]]
        seen[model.now_s] = set(fl.trip[run[np.isin(fl.link[run], links)]].tolist())
    return model, seen


def test_a_closed_road_carries_no_new_traffic_and_its_users_detour():
    # no periodic re-routing: every change of route here is the closure's
    quiet = {"time.report_interval": "1min", "traffic.reroute_interval": "0s"}
    sc = scenario(CLOSURE, **quiet)
    model = CityModel(sc)
    links = np.array(model.interventions.rows[0]["links"])
    assert len(links) >= 15
    base, base_seen = _run_watching(scenario(**quiet), links)
    model, seen = _run_watching(sc, links)
    t0, t1 = 6 * 3600 + 35 * 60, 6 * 3600 + 50 * 60
    # without the closure the stretch is used throughout the window (so the check can fail)
    assert sum(len(v) for t, v in base_seen.items() if t0 + 120 <= t < t1) > 20
    on_at_close = seen[t0]
    for t, vehicles in seen.items():
        if t0 <= t < t1:  # only vehicles already on it at the closure, driving out
            assert vehicles <= on_at_close, t
    assert not any(seen[t] for t in seen if t0 + 180 <= t < t1)
    # after reopening, traffic returns
    assert any(seen[t] for t in seen if t >= t1 + 60)
    # the vehicles that would have used it took other routes and still arrived
    sim, bsim = model.traffic.sim, base.traffic.sim
    fl, bfl = sim.fleet, bsim.fleet
    users = set().union(*(base_seen[t] for t in base_seen if t0 + 60 <= t < t1)) - on_at_close
    moved = [trip for trip in users if sim.by_trip.depart_s[trip] < t1 - 60]
    assert len(moved) > 10
    for trip in moved:
        v, bv = sim.vehicle_of_trip[trip], bsim.vehicle_of_trip[trip]
        route = fl.route_links[fl.route_start[v] : fl.route_end[v]]
        old = bfl.route_links[bfl.route_start[bv] : bfl.route_end[bv]]
        assert np.isin(old, links).any()
        if fl.depart_s[v] >= t0 + 60:  # left after the closure: never planned over it
            assert not np.isin(route, links).any()
    kpis = dict((k, v) for k, v, _ in model.results().kpis)
    assert kpis["interventions.vehicles_detoured"] >= len(moved)
    assert model.results().tables["interventions"]["links"][0] == sorted(links.tolist())


def test_a_lower_speed_limit_slows_its_links_and_is_lifted():
    from twin.traffic.sim import TrafficSim

    limit = {
        "kind": "speed_limit",
        "street": "Eastern Avenue",
        "speed_kmh": 15,
        "at": "06:35",
        "until": "06:50",
    }
    model = CityModel(scenario(limit))
    links = np.array(model.interventions.rows[0]["links"])
    sim: TrafficSim = model.traffic.sim
    before = sim.arrays.link_speed_mps[links].copy()
    assert (before > 20 / 3.6).all()
    while model.now_s < 6 * 3600 + 40 * 60:
        model.step()
    assert np.allclose(sim.arrays.link_speed_mps[links], 15 / 3.6)
    fl = sim.fleet
    run = fl.run_list[: fl.run_count[0]]
    on = run[np.isin(fl.link[run], links)]
    assert len(on) and (fl.speed_mps[on] <= 15 / 3.6 * 2.0 + 1e-9).all()  # speed factor <= 2
    while not model.finished:
        model.step()
    assert np.array_equal(sim.arrays.link_speed_mps[links], before)


# -- demand -------------------------------------------------------------------------------


def test_demand_scale_in_a_window_scales_only_that_window():
    window = {"kind": "demand", "scale": 2.0, "at": "06:35", "until": "06:45"}
    base = CityModel(scenario()).traffic.trips
    more = CityModel(scenario(window)).traffic.trips
    t0, t1 = 6 * 3600 + 35 * 60, 6 * 3600 + 45 * 60

    def count(trips, lo, hi):
        return int(((trips.depart_s >= lo) & (trips.depart_s < hi)).sum())

    n_base, n_more = count(base, t0, t1), count(more, t0, t1)
    assert n_base > 200
    assert 1.8 < n_more / n_base < 2.2  # whole tours are doubled; their later legs too
    assert count(more, 0, t0) == count(base, 0, t0)


def test_an_event_draws_its_visitors_there_and_back():
    from twin.interventions.targets import place_node

    event = {
        "kind": "event",
        "place": [-76.58, 39.285],
        "trips": 400,
        "at": "06:45",
        "until": "06:46",
        "spread_min": 5,
    }
    base = CityModel(scenario())
    model = CityModel(scenario(event))
    venue = place_node(model.network, -76.58, 39.285, "")
    trips, btrips = model.traffic.trips, base.traffic.trips
    to_venue = int((trips.dest_node == venue).sum()) - int((btrips.dest_node == venue).sum())
    from_venue = int((trips.origin_node == venue).sum()) - int((btrips.origin_node == venue).sum())
    assert to_venue == 400 and from_venue == 400
    new = ~np.isin(trips.trip_id, btrips.trip_id)
    go = new & (trips.dest_node == venue)
    assert (trips.depart_s[go] >= 6 * 3600 + 40 * 60).all()
    assert (trips.depart_s[go] <= 6 * 3600 + 45 * 60).all()
    back = new & (trips.origin_node == venue)
    assert set(trips.after_trip_id[back]) == set(trips.trip_id[go])
    res = model.run(progress=False)
    row = res.tables["interventions"].iloc[0]
    assert (row["lon"], row["lat"]) == (-76.58, 39.285)


# -- the grid -----------------------------------------------------------------------------


def test_a_transformer_outage_leaves_its_households_unserved_and_counted():
    outage = {"kind": "transformer_outage", "transformers": [1, 2], "at": "06:35", "until": "06:45"}
    base = CityModel(scenario(energy=True)).run(progress=False)
    model = CityModel(scenario(outage, energy=True))
    res = model.run(progress=False)
    city = model.energy.city
    k = dict((n, v) for n, v, _ in res.kpis)
    assert k["energy.households_unserved_max"] == city.trafo_households[[1, 2]].sum()
    # conservation: the energy that vanished from the households' draw is what is unserved
    e, b = res.tables["energy"], base.tables["energy"]
    lost_kwh = float((b["households_kw"] - e["households_kw"]).sum()) / 60.0
    assert k["energy.unserved_kwh"] == pytest.approx(lost_kwh, rel=1e-9)
    assert k["energy.unserved_kwh"] > 0
    minutes = 10
    assert k["energy.unserved_household_hours"] == pytest.approx(
        city.trafo_households[[1, 2]].sum() * minutes / 60
    )
    # the outage covers exactly the minutes [06:35, 06:45): rows are labelled by their start
    t = e["t_s"].to_numpy()
    changed = ~np.isclose(e["households_kw"].to_numpy(), b["households_kw"].to_numpy())
    assert set(t[changed]) <= set(range(6 * 3600 + 35 * 60, 6 * 3600 + 45 * 60, 60))
    assert changed.sum() >= 8
    tl = res.tables["transformer_loading"]
    during = tl[(tl.t_start_s == 6 * 3600 + 35 * 60) & tl.transformer.isin([1, 2])]
    assert (during.peak_loading_percent < 1.0).all()  # no load: only the no-load losses
    after = tl[(tl.t_start_s == 6 * 3600 + 50 * 60) & tl.transformer.isin([1, 2])]
    assert (after.peak_loading_percent > 5.0).all()


def test_a_raised_rating_lowers_the_loading_in_proportion():
    rating = {"kind": "transformer_rating", "transformers": [3], "factor": 2.0}
    base = CityModel(scenario(energy=True, **{"time.duration": "10min"})).run(progress=False)
    res = CityModel(scenario(rating, energy=True, **{"time.duration": "10min"})).run(progress=False)
    t0, t1 = base.tables["transformers"], res.tables["transformers"]
    assert t1.kva[3] == 2 * t0.kva[3]
    assert t1.peak_loading_percent[3] == pytest.approx(t0.peak_loading_percent[3] / 2, rel=0.01)
    assert t1.peak_loading_percent[4] == pytest.approx(t0.peak_loading_percent[4], rel=1e-6)


def test_a_heat_wave_raises_cooling_and_ev_adoption_adds_evs():
    keys = {"time.duration": "10min", "time.start": "14:00"}
    base = CityModel(scenario(energy=True, **keys)).run(progress=False)
    hot = CityModel(
        scenario(
            {"kind": "weather", "weather": "heatwave"},
            {"kind": "ev_adoption", "share": 0.5},
            energy=True,
            **keys,
        )
    ).run(progress=False)
    k0 = dict((n, v) for n, v, _ in base.kpis)
    k1 = dict((n, v) for n, v, _ in hot.kpis)
    assert k1["energy.hvac_kwh"] > 1.2 * k0["energy.hvac_kwh"]
    assert k0["population.evs"] == 0
    # half the car-owning households (car_shares[0] = 8.6 % own none) get an EV
    owners = k1["population.households"] * (1 - 0.086)
    assert 0.45 < k1["population.evs"] / owners < 0.55


def test_interventions_are_listed_with_their_times():
    res = CityModel(scenario(CLOSURE, {"kind": "demand", "scale": 1.0})).run(progress=False)
    table = res.tables["interventions"]
    assert table["kind"].tolist() == ["close_road", "demand"]
    assert table["start_s"].tolist() == [6 * 3600 + 35 * 60, 6 * 3600 + 30 * 60]
    assert table["end_s"][0] == 6 * 3600 + 50 * 60 and np.isnan(table["end_s"][1])
    assert "close Eastern Avenue" in table["label"][0]


def test_a_closure_from_the_start_is_never_driven():
    sc = scenario({k: v for k, v in CLOSURE.items() if k not in ("at", "until")})
    links = np.array(CityModel(sc).interventions.rows[0]["links"])
    model, seen = _run_watching(sc, links)
    assert not any(seen.values())
    k = dict((n, v) for n, v, _ in model.results().kpis)
    assert k["traffic.trips_completed"] > 0.5 * k["traffic.trips"]


@pytest.mark.parametrize("name", ["closure", "event", "outage"])
def test_shipped_what_ifs_find_their_targets(name):
    sc = load_scenario(ROOT / "scenarios" / f"baltimore-{name}.toml")
    item = sc.intervention[0]
    keys = {"time.duration": "5min", "time.report_interval": "5min"}
    keys["energy.enabled"] = name == "outage"
    if item.at is not None:
        keys["time.start"] = format_clock(item.at)
    model = CityModel(sc.with_overrides(keys))
    row = model.interventions.rows[0]
    if name == "closure":
        assert len(row["links"]) == 20
    elif name == "outage":
        assert len(row["transformers"]) > 0
    else:
        assert row["lon"] == item.place[0]


# -- signals ------------------------------------------------------------------------------

BUSY_SIGNAL_OSM = 49547309  # Highland Avenue x East Baltimore Street, four approaches


def _red_crossings(model, node: int, steps: int) -> int:
    """Vehicles that crossed ``node`` from an approach whose movement showed red."""
    from twin.traffic.state import RED

    sim = model.traffic.sim
    net = model.network
    approaches = set(net.in_links(node).tolist())
    count = 0
    for _ in range(steps):
        fl = sim.fleet
        run = fl.run_list[: fl.run_count[0]].copy()
        on = run[np.isin(fl.link[run], list(approaches))]
        before_link = fl.link[on].copy()
        nxt = [
            fl.route_links[fl.route_start[v] + fl.route_idx[v] + 1]
            if fl.route_start[v] + fl.route_idx[v] + 1 < fl.route_end[v]
            else -1
            for v in on
        ]
        state = []
        for link, to in zip(before_link, nxt, strict=True):
            movs = [m for m in net.movements_from(int(link)) if net.mov_to_link[m] == to]
            state.append(sim.arrays.mov_state[movs[0]] if movs else -1)
        sim.advance(1)
        crossed = sim.fleet.link[on] != before_link
        count += int(np.sum(crossed & (np.array(state) == RED)))
    return count


@pytest.mark.parametrize("control", ["all_way_stop", "priority"])
def test_a_removed_signal_leaves_its_junction_unsignalised(control):
    from twin.network.road import CTRL_ALL_WAY_STOP, CTRL_PRIORITY
    from twin.traffic.junctions import YIELD_NONE

    removal = {"kind": "remove_signal", "junction": BUSY_SIGNAL_OSM, "control": control}
    base = CityModel(scenario())
    model = CityModel(scenario(removal))
    node = int(np.flatnonzero(base.network.node_osmid == BUSY_SIGNAL_OSM)[0])
    assert base.network.node_signal[node] >= 0  # the map's own network is not changed
    arrays = model.traffic.sim.arrays
    assert arrays.node_signal[node] == -1
    expected = CTRL_ALL_WAY_STOP if control == "all_way_stop" else CTRL_PRIORITY
    assert arrays.node_control[node] == expected
    approaches = model.network.in_links(node)
    if control == "priority":  # the minor road gives way
        assert (arrays.link_yield[approaches] != YIELD_NONE).any()
    for m in (base, model):
        m.traffic.sync(6 * 3600 + 40 * 60)
    # under the signal no vehicle crosses on red; without it, the lights are not obeyed
    assert _red_crossings(base, node, 300) == 0
    assert _red_crossings(model, node, 300) > 0
    row = model.run(progress=False).tables["interventions"].iloc[0]
    assert row["lon"] == pytest.approx(base.network.node_lon[node])


def test_removing_a_signal_that_is_not_there_is_named():
    with pytest.raises(ScenarioError, match="OSM node 1 is not a junction of this map"):
        CityModel(scenario({"kind": "remove_signal", "junction": 1}))


def test_a_what_if_adds_its_interventions_to_its_base_s(tmp_path):
    (tmp_path / "base.toml").write_text(
        f'base = "{SHORT.as_posix()}"\n[[intervention]]\nkind = "weather"\nweather = "heatwave"\n'
    )
    (tmp_path / "child.toml").write_text(
        'base = "base.toml"\n[[intervention]]\nkind = "ev_adoption"\nshare = 0.4\n'
    )
    sc = load_scenario(tmp_path / "child.toml")
    assert [i.kind for i in sc.intervention] == ["weather", "ev_adoption"]
    assert sc.energy.weather == "heatwave" and sc.population.ev_share == 0.4


def test_set_may_not_override_a_key_an_intervention_sets():
    sc = load_scenario(ROOT / "scenarios" / "baltimore-ev50.toml")
    with pytest.raises(ScenarioError, match=r"set by intervention 1 \(ev_adoption\)"):
        sc.with_overrides({"population.ev_share": 0.3})
    assert sc.with_overrides({"seed": 3}).population.ev_share == 0.5


def test_an_until_before_the_start_is_refused():
    with pytest.raises(ScenarioError, match="until 06:00 is not after the start 06:30"):
        CityModel(scenario({"kind": "close_road", "way": [266323372], "until": "06:00"}))


def test_a_tariff_prices_its_hours():
    keys = {"time.duration": "10min", "time.report_interval": "5min"}
    tariff = {"kind": "tariff", "price_usd_per_kwh": 0.48, "at": "06:30", "until": "07:00"}
    base = CityModel(scenario(energy=True, **keys)).run(progress=False)
    dear = CityModel(scenario(tariff, energy=True, **keys)).run(progress=False)
    k0 = dict((n, v) for n, v, _ in base.kpis)
    k1 = dict((n, v) for n, v, _ in dear.kpis)
    assert k1["energy.import_kwh"] == pytest.approx(k0["energy.import_kwh"])
    assert k1["energy.cost_usd"] == pytest.approx(3 * k0["energy.cost_usd"], rel=1e-9)


def test_a_tariff_prices_its_hours_in_a_eur_run():
    price = 3 * PRESETS["de"].price_per_kwh
    tariff = {"kind": "tariff", "price_per_kwh": price, "at": "06:30", "until": "07:00"}
    keys = {"time.duration": "10min", "time.report_interval": "5min"}
    dortmund = load_scenario(ROOT / "scenarios" / "dortmund.toml").with_overrides(keys)
    base = CityModel(dortmund).run(progress=False)
    model = CityModel(dortmund.with_overrides({"intervention": [tariff]}))
    dear = model.run(progress=False)
    k0 = {n: (v, u) for n, v, u in base.kpis}
    k1 = {n: (v, u) for n, v, u in dear.kpis}
    assert "energy.cost_usd" not in k1 and k1["energy.cost_eur"][1] == "EUR"
    assert k1["energy.import_kwh"][0] == pytest.approx(k0["energy.import_kwh"][0])
    assert k1["energy.cost_eur"][0] == pytest.approx(3 * k0["energy.cost_eur"][0], rel=1e-9)
    label = dear.tables["interventions"]["label"][0]
    assert label == f"tariff {price:g} EUR/kWh"


def test_overlapping_speed_limits_restore_the_one_still_in_force():
    first = {"kind": "speed_limit", "street": "Eastern Avenue", "speed_kmh": 15,
             "at": "06:32", "until": "06:36"}  # fmt: skip
    second = {**first, "speed_kmh": 30, "at": "06:34", "until": "06:40"}
    model = CityModel(scenario(first, second, **{"time.report_interval": "1min"}))
    links = np.array(model.interventions.rows[0]["links"])
    speed = model.traffic.sim.arrays.link_speed_mps
    original = speed[links].copy()
    seen = {}
    while model.now_s < 6 * 3600 + 41 * 60:
        model.step()
        seen[model.now_s] = speed[links].copy()
    m = lambda hh, mm: seen[hh * 3600 + mm * 60]  # noqa: E731
    assert np.allclose(m(6, 33), 15 / 3.6) and np.allclose(m(6, 35), 30 / 3.6)
    assert np.allclose(m(6, 37), 30 / 3.6)  # the first ended; the second still holds
    assert np.array_equal(m(6, 41), original)


def test_demand_windows_scale_random_trips():
    window = {"kind": "demand", "scale": 0.5, "at": "06:40", "until": "06:50"}
    keys = {"demand.kind": "random", "population.enabled": False}
    base = CityModel(scenario(**keys)).traffic.trips
    less = CityModel(scenario(window, **keys)).traffic.trips
    t0, t1 = 6 * 3600 + 40 * 60, 6 * 3600 + 50 * 60
    inside = lambda tr: int(((tr.depart_s >= t0) & (tr.depart_s < t1)).sum())  # noqa: E731
    assert inside(base) > 100
    assert 0.4 < inside(less) / inside(base) < 0.6
    assert len(np.unique(less.trip_id)) == len(less)
    assert len(less) - inside(less) == len(base) - inside(base)


def test_a_signal_controller_switched_for_a_window_then_handed_back():
    switch = {"kind": "signal_control", "policy": "max_pressure", "at": "06:40",
              "until": "06:48"}  # fmt: skip
    model = CityModel(scenario(switch, **{"time.report_interval": "1min"}))
    plans = model.traffic.sim.plans
    phases = {}
    while not model.finished:
        model.step()
        phases[model.now_s] = (plans.controlled.copy(), plans.phase.copy())
    t = lambda mm: 6 * 3600 + mm * 60  # noqa: E731
    assert not phases[t(39)][0].any()  # fixed plans before
    assert phases[t(41)][0].sum() > 10  # max-pressure decides in the window
    assert not phases[t(49)][0].any()  # handed back to the fixed plans
    # after the hand-back the fixed plans cycle again: phases keep changing
    assert (phases[t(52)][1] != phases[t(55)][1]).sum() > 10
    k = dict((n, v) for n, v, _ in model.results().kpis)
    assert 8 * 60 / 5 <= k["interventions.signal_decisions"] <= 8 * 60 / 5 + 1  # every 5 s


def test_an_unknown_signal_policy_is_named():
    with pytest.raises(Exception, match="max_presure"):
        CityModel(scenario({"kind": "signal_control", "policy": "max_presure", "at": "06:40"}))


def test_a_weather_what_if_replaces_an_explicit_temperature_range():
    base = load_scenario(SHORT).with_overrides({"energy.temp_min_c": 5, "energy.temp_max_c": 9})
    assert base.energy.temperature_range_c == (5, 9)
    hot = base.with_overrides({"intervention": [{"kind": "weather", "weather": "heatwave"}]})
    assert hot.energy.temperature_range_c == (27.0, 38.0)  # twin/energy/weather.py's preset
    assert apply_region(hot, net_at(*BALTIMORE))[0].energy.temperature_range_c == (27.0, 38.0)
    # on a German map, the heat wave is over Germany's summer day (twin/region.py)
    dortmund = load_scenario(ROOT / "scenarios" / "dortmund.toml").with_overrides(
        {"energy.temp_min_c": 5, "energy.temp_max_c": 9}
    )
    hot = dortmund.with_overrides({"intervention": [{"kind": "weather", "weather": "heatwave"}]})
    summer = PRESETS["de"].summer_c
    assert apply_region(hot, net_at(*DORTMUND))[0].energy.temperature_range_c == (
        summer[0] + 6.0,
        summer[1] + 7.0,
    )
