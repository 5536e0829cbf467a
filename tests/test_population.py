"""Population: features from OSM, homes, households, day plans, and their figures.

Documented ranges the default plans must meet (sources in twin/population/*.py and the
README's "Population" section):

- vehicle trips per household-day 4-6 (NHTS 2017: 5.1; 1,865 per household-year);
- the day's driven trips follow the NHTS 2001 weekday trip-start profile (twin/traffic/
  profiles.py; 7.7 % in the busiest morning hour): within 7 % in total variation, the busiest
  morning hour under 9.5 % (the car commutes, from the Census 2000 departure times, put
  ~4 % of the day's trips in 07:00-07:59, with the school runs ~8.3 %);
- trip lengths: at least half of the internal driven trips are 3 miles (4.8 km) or shorter
  (NHTS 2017: about half of all trips), median network distance 1-5 km on these city maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions
from twin.network.synthetic import grid_roadnet
from twin.population.agent import Household
from twin.population.config import PopulationConfig
from twin.population.destinations import (
    DETERRENCE,
    HOME,
    SHOP,
    THROUGH,
    WORK,
    Attraction,
    Gravity,
    build_zones,
)
from twin.population.features import read_features
from twin.population.homes import HOME_FROM_BUILDING, HOME_FROM_STREET, NO_HOMES_CLASSES
from twin.population.plans import Stop, Tour, Tours
from twin.population.synthesis import day_legs, scale_tours, synthesize
from twin.traffic.profiles import hourly_shares
from twin.traffic.routing import Router

MAPS = Path(__file__).resolve().parents[1] / "maps"
BALTIMORE = MAPS / "baltimore.osm.pbf"


@pytest.fixture(scope="module")
def net():
    return load_roadnet(BALTIMORE, BuildOptions())


@pytest.fixture(scope="module")
def pop(net):
    return synthesize(net, BALTIMORE, PopulationConfig(), seed=42)


@pytest.fixture(scope="module")
def legs(pop):
    return day_legs(pop, pop.default_tours)


# -- features ---------------------------------------------------------------------------------


def test_buildings_match_osmnx_features(net):
    """Same buildings and footprint areas as osmnx's features_from_xml on the same file."""
    ox = pytest.importorskip("osmnx")
    ref = ox.features_from_xml(MAPS / "baltimore.osm.bz2", tags={"building": True})
    ref = ref[ref.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(net.meta["crs"])
    ours = read_features(MAPS / "baltimore.osm.bz2", net.meta["crs"])
    ways = ref.loc["way"]
    area = dict(zip(ways.index, ways.area, strict=True))
    mine = dict(zip(ours.bldg_osm_id, ours.bldg_area_m2, strict=True))
    common = sorted(set(area) & set(mine))
    assert len(common) >= 0.99 * len(ways)
    a = np.array([area[k] for k in common])
    b = np.array([mine[k] for k in common])
    np.testing.assert_allclose(b, a, rtol=1e-6)
    cx = dict(zip(ways.index, ways.centroid.x, strict=True))
    mx = dict(zip(ours.bldg_osm_id, ours.bldg_x_m, strict=True))
    np.testing.assert_allclose([mx[k] for k in common], [cx[k] for k in common], atol=1e-3)


def test_features_of_pbf_and_xml_agree(net):
    a = read_features(MAPS / "baltimore.osm.bz2", net.meta["crs"])
    b = read_features(BALTIMORE, net.meta["crs"])
    assert a.summary() == b.summary()
    np.testing.assert_allclose(np.sort(a.bldg_area_m2), np.sort(b.bldg_area_m2), rtol=1e-9)


def test_a_building_larger_than_any_on_earth_is_left_out(tmp_path, caplog):
    """A building way over 1 km2 (e.g. a tower drawn over a district) is a mapping error:
    dropped with a warning naming it; a 100 x 100 m building beside it is kept."""

    def square(way_id: int, first_node: int, lat: float, side_deg: float) -> tuple[str, str]:
        corners = [(0, 0), (0, 1), (1, 1), (1, 0)]
        nodes = "".join(
            f'<node id="{first_node + k}" lat="{lat + dy * side_deg}" '
            f'lon="{-83.0 + dx * side_deg * 1.305}"/>'
            for k, (dy, dx) in enumerate(corners)
        )
        refs = "".join(f'<nd ref="{first_node + k}"/>' for k in (0, 1, 2, 3, 0))
        way = f'<way id="{way_id}">{refs}<tag k="building" v="commercial"/></way>'
        return nodes, way

    n1, w1 = square(7, 1, 39.95, 0.0110)  # ~1.22 x 1.22 km
    n2, w2 = square(8, 11, 39.99, 0.0009)  # ~100 x 100 m
    path = tmp_path / "big.osm"
    path.write_text(f'<?xml version="1.0"?><osm version="0.6">{n1}{n2}{w1}{w2}</osm>')
    with caplog.at_level("WARNING", logger="twin.population.features"):
        f = read_features(path, "EPSG:32617")
    assert len(f.bldg_osm_id) == 1 and f.bldg_osm_id[0] == 8
    assert 0.9e4 < f.bldg_area_m2[0] < 1.1e4
    assert "way 7" in caplog.text and "1 building(s)" in caplog.text


def test_unsorted_file_falls_back_to_closed_ways(net, map_file):
    """columbus.osm.bz2 is not sorted by id: read without multipolygons, not refused."""
    f = read_features(MAPS / "columbus.osm.bz2", "EPSG:32617")
    assert len(f.bldg_x_m) > 1000 and (f.bldg_area_m2 > 0).all()


# -- homes and households ----------------------------------------------------------------------


def test_baltimore_households_split_is_reported_and_stable(pop):
    s = pop.summary()
    # golden figures for seed 42 (dwellings: flats, houses, floor area / 100 m2)
    assert s["dwellings_in_buildings"] == 2922
    assert s["households_in_buildings"] == 2922
    assert s["households"] == 19998
    assert s["households_along_streets"] == 19998 - 2922
    assert s["households"] == s["households_in_buildings"] + s["households_along_streets"]


def test_every_home_is_on_the_routable_network(net, pop):
    hh = pop.households
    assert ((hh.home_node >= 0) & (hh.home_node < net.n_nodes)).all()
    ends = np.column_stack([net.link_from[hh.home_link], net.link_to[hh.home_link]])
    assert ((ends == hh.home_node[:, None]).any(axis=1)).all()
    banned = [i for i, n in enumerate(net.highway_names) if n in NO_HOMES_CLASSES]
    assert not np.isin(net.link_highway[hh.home_link], banned).any()
    # every home node reaches, and is reached from, the network (routable both ways)
    router = Router(net)
    sample = np.random.default_rng(0).choice(len(hh), 200, replace=False)
    other = np.roll(hh.home_node[sample], 1)
    ok = router.routes(hh.home_node[sample], other).ok | (hh.home_node[sample] == other)
    assert ok.all()
    # homes placed along streets lie on their link's polyline
    street = np.flatnonzero(hh.home_source == HOME_FROM_STREET)[:50]
    for i in street:
        geom = net.link_geometry(int(hh.home_link[i]))
        seg_a, seg_b = geom[:-1], geom[1:]
        p = np.array([hh.home_x_m[i], hh.home_y_m[i]])
        d = seg_b - seg_a
        t = np.clip(((p - seg_a) * d).sum(1) / np.maximum((d * d).sum(1), 1e-12), 0, 1)
        assert np.min(np.hypot(*(seg_a + t[:, None] * d - p).T)) < 1e-6


def test_fewer_households_than_dwellings_come_from_buildings(net):
    p = synthesize(net, BALTIMORE, PopulationConfig(households=1000), seed=1)
    assert len(p) == 1000 and (p.households.home_source == HOME_FROM_BUILDING).all()
    assert len(np.unique(p.households.home_building)) > 50  # spread over buildings


def test_household_distributions_follow_the_shares(net):
    cfg = PopulationConfig(households=60000, ev_share=0.3)
    p = synthesize(net, BALTIMORE, cfg, seed=5)
    hh = p.households
    persons = np.bincount(hh.persons - 1, minlength=6) / len(hh)
    np.testing.assert_allclose(persons, np.array(cfg.persons_shares) / 1.0, atol=0.006)
    cars = np.bincount(hh.cars, minlength=4) / len(hh)
    np.testing.assert_allclose(cars, np.array(cfg.car_shares), atol=0.006)
    assert abs(hh.has_ev[hh.cars > 0].mean() - 0.3) < 0.01
    assert not hh.has_ev[hh.cars == 0].any()
    assert ((hh.workers <= hh.adults) & (hh.adults <= hh.persons) & (hh.adults >= 1)).all()
    adults = hh.adults.sum()
    assert abs(hh.workers.sum() / adults - cfg.employment_rate) < 0.01


def test_same_seed_same_population_and_plans(net, pop, legs):
    again = synthesize(net, BALTIMORE, PopulationConfig(), seed=42)
    for name in ("home_x_m", "home_node", "persons", "workers", "cars", "has_ev"):
        assert np.array_equal(getattr(pop.households, name), getattr(again.households, name))
    legs2 = day_legs(again, again.default_tours)
    for name in ("origin_node", "dest_node", "depart_s", "after", "car", "purpose"):
        assert np.array_equal(getattr(legs, name), getattr(legs2, name))
    other = synthesize(net, BALTIMORE, PopulationConfig(), seed=43)
    assert not np.array_equal(pop.households.persons, other.households.persons)


# -- plans -----------------------------------------------------------------------------------


def test_trip_rates_are_in_the_documented_ranges(pop, legs):
    n = len(pop)
    driven = legs.driven & (legs.household >= 0)
    assert 4.0 <= driven.sum() / n <= 6.0  # NHTS 2017: 5.1 vehicle trips per household-day
    hours = np.floor(legs.depart_s[legs.driven] / 3600).astype(int) % 24
    shares = np.bincount(hours, minlength=24) / legs.driven.sum()
    nhts = hourly_shares("weekday")
    assert 0.5 * np.abs(shares - nhts).sum() <= 0.07  # drawn from the profile: ~0.15
    morning = shares[5:11]
    assert 0.07 <= morning.max() <= 0.095  # NHTS 2001: 7.7 %
    assert np.argmax(morning) + 5 == 7  # the busiest hour is 07:00-08:00 (am_peak 07:30)
    # midday is not starved by the peaks (NHTS: 5.1-6.6 % an hour in 10:00-15:00)
    assert shares[10:15].min() >= 0.04
    # both peaks: the evening's busiest hour carries about the morning's
    assert 0.07 <= shares[15:19].max() <= 0.095  # NHTS 2001: 8.6 %


def test_trip_lengths_are_in_the_documented_range(net, legs):
    driven = np.flatnonzero(legs.driven & (legs.household >= 0))
    sample = np.random.default_rng(0).choice(driven, 3000, replace=False)
    sample = sample[legs.origin_node[sample] != legs.dest_node[sample]]
    routes = Router(net).routes(legs.origin_node[sample], legs.dest_node[sample])
    assert routes.ok.all()
    length_km = (
        np.add.reduceat(np.append(net.link_length_m[routes.links], 0), routes.offsets[:-1]) / 1000.0
    )
    assert 1.0 <= np.median(length_km) <= 5.0
    assert (length_km <= 4.83).mean() >= 0.5
    # work trips go farther than shopping trips (gravity deterrence HBW vs HBNW)
    purpose = legs.purpose[sample]
    assert np.median(length_km[purpose == WORK]) > np.median(length_km[purpose == SHOP])


def test_tours_start_and_end_at_home_and_chain_per_car(pop, legs):
    hh = pop.households
    own = np.flatnonzero(legs.household >= 0)
    first = own[(np.diff(np.concatenate([[-1], legs.tour[own]])) != 0)]
    assert (legs.origin_node[first] == hh.home_node[legs.household[first]]).all()
    home = own[legs.purpose[own] == HOME]
    assert (legs.dest_node[home] == hh.home_node[legs.household[home]]).all()
    assert len(home) == len(pop.default_tours)  # one return home per tour
    chained = np.flatnonzero(legs.after >= 0)
    prev = legs.after[chained]
    assert (legs.household[prev] == legs.household[chained]).all()
    assert (legs.car[prev] == legs.car[chained]).all()
    assert (legs.dest_node[prev] == legs.origin_node[chained]).all()  # the car is there
    assert (legs.depart_s[prev] < legs.depart_s[chained]).all()
    assert (legs.min_dwell_s >= 0).all()
    # every driven leg but a car's first of the day is chained
    driven = legs.driven & (legs.household >= 0)
    firsts = len({(h, c) for h, c in zip(legs.household[driven], legs.car[driven], strict=True)})
    assert len(chained) == driven.sum() - firsts
    # cars are the household's own
    assert (legs.car[driven] < hh.cars[legs.household[driven]]).all()


def test_through_traffic_share_and_gateways(net, pop, legs):
    through = legs.purpose == THROUGH
    share = through.sum() / legs.driven.sum()
    assert abs(share - pop.cfg.through_share) < 0.005
    g = pop.gateways
    assert np.isin(legs.origin_node[through], g.out_node).all()
    assert np.isin(legs.dest_node[through], g.in_node).all()
    gap = np.hypot(
        net.node_x_m[legs.origin_node[through]] - net.node_x_m[legs.dest_node[through]],
        net.node_y_m[legs.origin_node[through]] - net.node_y_m[legs.dest_node[through]],
    )
    diag = np.hypot(np.ptp(net.node_x_m), np.ptp(net.node_y_m))
    assert (gap >= 0.5 * diag).mean() > 0.99


def test_demand_scale_samples_or_replicates_whole_tours(pop):
    tours = pop.default_tours
    half = scale_tours(tours, 0.5, seed=42)
    assert abs(len(half) / len(tours) - 0.5) < 0.01
    double = scale_tours(tours, 2.0, seed=42)
    assert len(double) == 2 * len(tours)
    assert scale_tours(tours, 1.0, seed=42) is tours
    # replicas drive their own cars, so chains never mix a tour with its copy
    legs = day_legs(pop, double)
    chained = np.flatnonzero(legs.after >= 0)
    assert (legs.car[legs.after[chained]] == legs.car[chained]).all()


def test_tours_round_trip_through_python_objects(pop):
    some = np.flatnonzero(np.bincount(pop.default_tours.household) >= 2)[:20]
    plans = [(int(h), pop.default_tours_of(int(h)).to_list()) for h in some]
    back = Tours.from_lists(plans)
    ref = pop.default_tours.of(some)
    order = np.argsort(ref.household, kind="stable")
    assert np.array_equal(back.household, ref.household[order])
    assert np.array_equal(back.stop_node, ref.select(np.ones(len(ref), bool)).stop_node[
        np.concatenate([np.arange(ref.stop_offsets[i], ref.stop_offsets[i + 1]) for i in order])
    ])  # fmt: skip


# -- gravity ----------------------------------------------------------------------------------


def test_gravity_choice_matches_the_analytic_probabilities():
    """On a 4x4 grid with one destination point per zone, the chosen zones' frequencies are
    A_d F(t_od) / sum over d of A_d F(t_od)."""
    net = grid_roadnet(4, 4, spacing_m=600.0)
    zones = build_zones(net, cell_m=600.0)
    assert zones.n_zones == 16
    rng = np.random.default_rng(1)
    weight = rng.uniform(1, 10, zones.n_zones)
    node = zones.rep_node.copy()
    order = np.argsort(zones.node_zone[node])
    total = np.bincount(zones.node_zone[node], weight, zones.n_zones)
    cum = np.cumsum(weight[order])
    start = np.concatenate([[0.0], np.cumsum(total)[:-1]])
    a = Attraction(node, weight, total, order, cum, start)
    g = Gravity(zones, [a, a, a])
    origin = zones.rep_node[5]
    n = 200_000
    dest = g.choose(WORK, np.full(n, origin), np.random.default_rng(2))
    freq = np.bincount(zones.node_zone[dest], minlength=16) / n
    b, c = DETERRENCE[WORK]
    t = np.maximum(zones.time_min[5], 1.0)
    p = total * t**b * np.exp(c * t)
    p /= p.sum()
    assert (np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-4).all(), (freq, p)


def _one_shop_map():
    """A 6x6 grid, one home at every node, one shop point at the corner node 0."""
    from twin.population.destinations import POI_KINDS, attractions
    from twin.population.features import MapFeatures

    net = grid_roadnet(6, 6, spacing_m=600.0)
    zones = build_zones(net, cell_m=600.0)
    f64, none = np.empty(0), np.empty(0, dtype=object)
    features = MapFeatures(
        f64, f64, f64, f64, np.empty(0, np.int32), none, np.empty(0, np.int64),
        f64, f64, f64, none, none,
        net.node_x_m[:1], net.node_y_m[:1], np.array([POI_KINDS.index("shop")], np.int8),
    )  # fmt: skip
    homes = (net.node_x_m, net.node_y_m)
    return net, zones, lambda shares: attractions(net, features, zones, homes, shares)


def test_local_shares_put_that_share_of_destinations_at_the_homes():
    """With local share s, the shop's zone holds (1 - s) + s / 36 of the shop attraction and
    every other zone s / 36 (one home per node, one node per zone); s = 0 is the map alone."""
    net, zones, attract = _one_shop_map()
    assert zones.n_zones == net.n_nodes == 36
    shop_zone = zones.node_zone[0]
    for s in (0.0, 0.5, 1.0):
        total = attract((0.41, s, 0.5))[SHOP].zone_total
        share = total / total.sum()
        expected = np.full(36, s / 36)
        expected[shop_zone] += 1 - s
        assert share == pytest.approx(expected, abs=1e-12), s


def test_local_shares_send_shop_trips_by_the_gravity_probabilities():
    """With one mapped shop, every shop trip goes to it; with half the attraction at the homes,
    trips from the far corner go to it with the gravity model's probability (A_d F(t_od)
    over all zones, 0.15 here), the others nearer home."""
    net, zones, attract = _one_shop_map()
    n = 20_000
    far = np.full(n, net.n_nodes - 1)  # the corner opposite the shop
    for s in (0.0, 0.5):
        dest = Gravity(zones, attract((0.41, s, 0.5))).choose(SHOP, far, np.random.default_rng(3))
        to_shop = np.mean(dest == 0)
        a = np.full(36, s / 36)
        a[zones.node_zone[0]] += 1 - s
        b, c = DETERRENCE[SHOP]
        t = np.maximum(zones.time_min[zones.node_zone[net.n_nodes - 1]], 1.0)
        p = a * t**b * np.exp(c * t)
        p0 = p[zones.node_zone[0]] / p.sum()
        assert abs(to_shop - p0) <= 4 * np.sqrt(p0 * (1 - p0) / n) + 1e-9, (s, to_shop, p0)
        assert p0 == 1.0 if s == 0 else p0 < 0.2  # most now stay nearer home


# -- the Python API: subclassing Household ----------------------------------------------------


class StayAtHome(Household):
    """Nobody leaves home."""

    def plan_day(self) -> list[Tour]:
        return []


class EveryoneToOneShop(Household):
    """One tour a day by car to the same node, leaving at 08:00."""

    def plan_day(self) -> list[Tour]:
        if self.cars == 0:
            return []
        node = 0 if self.home_node != 0 else 1
        return [Tour(person=0, car=0, depart_s=8 * 3600.0, stops=[Stop("shop", node, 9 * 3600)])]


def _scenario(tmp_path, extra: str = ""):
    from twin.scenario import load_scenario

    path = tmp_path / "s.toml"
    path.write_text(
        f'seed = 42\n[map]\nfile = "{BALTIMORE}"\n[time]\nstart = "07:00"\nduration = "20min"\n'
        'report_interval = "10min"\n[population]\nhouseholds = 2000\n' + extra
    )
    return load_scenario(path)


def test_subclassed_plan_day_changes_the_trips(tmp_path):
    from twin.model import CityModel

    base = CityModel(_scenario(tmp_path))
    assert len(base.population.trips) > 0
    home = CityModel(_scenario(tmp_path), household_class=StayAtHome)
    assert len(home.population.legs) == 0 and len(home.population.trips) == 0
    shop = CityModel(
        _scenario(tmp_path, "through_share = 0.0\n"), household_class=EveryoneToOneShop
    )
    legs = shop.population.legs
    n_cars = int((shop.population.data.households.cars > 0).sum())
    assert len(legs) == 2 * n_cars
    out = legs.purpose != HOME
    assert (legs.dest_node[out] <= 1).all() and (legs.depart_s[out] == 8 * 3600).all()
    assert isinstance(shop.population.households[0], EveryoneToOneShop)


class Recorder(Household):
    arrivals: ClassVar[list] = []

    def on_arrive_home(self, t_s: float, car: int, distance_m: float) -> None:
        super().on_arrive_home(t_s, car, distance_m)
        Recorder.arrivals.append((self.index, car, t_s, distance_m))


def test_cars_arriving_home_reach_their_household(tmp_path):
    from twin.model import CityModel

    Recorder.arrivals = []
    model = CityModel(_scenario(tmp_path).with_overrides({"time": {"duration": "2h"}}),
                      household_class=Recorder)  # fmt: skip
    results = model.run(progress=False)
    trips = results.tables["trips"]
    legs = model.population.legs
    leg = trips["trip_id"].to_numpy()
    home = (legs.purpose[leg] == HOME) & (legs.household[leg] >= 0)
    arrived = trips["status"].to_numpy() == "arrived"
    assert len(Recorder.arrivals) == int((home & arrived).sum()) > 0
    got = sorted((h, t) for h, _, t, _ in Recorder.arrivals)
    want = sorted(
        zip(legs.household[leg[home & arrived]], trips["arrive_s"].to_numpy()[home & arrived],
            strict=True)
    )  # fmt: skip
    assert [(int(h), float(t)) for h, t in want] == got
    # a chained trip never leaves before the car it follows has arrived
    by_id = trips.set_index("trip_id")
    after = legs.after[leg]
    follows = np.flatnonzero((after >= 0) & np.isin(after, leg))
    for k in follows[:500]:
        prev = by_id.loc[after[k]]
        if prev["status"] == "arrived" and np.isfinite(trips["depart_s"].iloc[k]):
            assert trips["depart_s"].iloc[k] >= prev["arrive_s"]


# -- scenario keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("households = 0", 'population.households: expected a count >= 1 or "auto"'),
        ('households = "many"', "population.households"),
        ("persons_shares = [-1, 2]", "population.persons_shares"),
        ("ev_share = 1.5", "population.ev_share"),
        ("local_shares = [0.4, 1.5, 0.5]", "population.local_shares"),
        ("local_shares = [0.4, 0.5]", "population.local_shares"),
        ('am_peak = "7am"', "population.am_peak"),
        ("colour = 1", "population.colour: unknown key"),
    ],
)
def test_bad_population_keys_name_the_key(tmp_path, text, message):
    from twin.scenario import load_scenario

    path = tmp_path / "bad.toml"
    path.write_text(f'[map]\nfile = "{BALTIMORE}"\n[population]\n{text}\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml") as info:
        load_scenario(path)
    assert message in str(info.value)


def test_population_demand_needs_the_population(tmp_path):
    from twin.scenario import load_scenario

    path = tmp_path / "bad.toml"
    path.write_text(f'[map]\nfile = "{BALTIMORE}"\n[population]\nenabled = false\n')
    with pytest.raises(ScenarioError, match=r'demand\.kind = "population" needs'):
        load_scenario(path)


@pytest.mark.parametrize(
    "name",
    [
        "west-oakland",
        "aguascalientes",
        "dortmund",
        pytest.param("columbus", marks=pytest.mark.slow),
    ],
)
def test_every_shipped_map_gets_a_population(name, map_file, roadnet):
    """Thinly mapped extracts (aguascalientes: 35 buildings, no residential land use) still get
    households along their streets, homes on the network, and routable trips."""
    net = roadnet(name)
    data = synthesize(net, map_file(name), PopulationConfig(), seed=1)
    s = data.summary()
    assert s["households"] == s["households_in_buildings"] + s["households_along_streets"] > 0
    hh = data.households
    assert ((hh.home_node >= 0) & (hh.home_node < net.n_nodes)).all()
    legs = day_legs(data, data.default_tours)
    driven = legs.driven & (legs.household >= 0)
    assert 3.0 <= driven.sum() / len(data) <= 7.0
    sample = np.flatnonzero(legs.driven)[:300]
    sample = sample[legs.origin_node[sample] != legs.dest_node[sample]]
    assert Router(net).routes(legs.origin_node[sample], legs.dest_node[sample]).ok.all()
