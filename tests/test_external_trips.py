"""Residents' trips that leave the map through its boundary gateways (issue #15).

Expected figures, computed here from the survey distributions, not from twin's output:

- trip lengths (road distance, vehicle trips), lognormal: all purposes (used for shopping,
  errands, leisure) from NHTS 2017 (FHWA-PL-18-019): mean vehicle trip 10.5 mi, and more
  than 35 % of vehicle trips under 2 mi; commutes: mean about 12 mi, sigma 1.0; school:
  median 4 km, sigma 1.0; road distance = 1.2 x straight line (Ballou et al. 2002, US).
- a stop is outside the map when its trip is longer than the road distance to the map's edge
  in a uniformly drawn direction, so the expected share of stops outside is the mean over
  homes and directions of the survival function at 1.2 x the distance to the edge (computed
  below with shapely rays against the nodes' convex hull). On west-oakland (1.1 x 1.3 km)
  every home is within ~0.7 km of the edge: NHTS puts only a few % of vehicle trips under
  half a mile, so 85-99 % of the stops lie outside; on the 8 x 7 km Baltimore extract far
  fewer (its centre is ~3.5 km from the edge, where about half of the trips end inside).
- trip lengths of all household vehicle trips (inside distance + outside distance): mean
  7-13 mi (NHTS 2017: 10.5 mi; about 9 mi without the trips of 100 mi or more, which are
  under 1 % of trips but ~15 % of the miles, FHWA "Our Nation's Highways 2008" Fig. 4-5),
  median 2.5-7 mi (the fit above: 3.5 mi for all purposes, commutes longer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from scipy import optimize, stats

from twin.network.cache import load_roadnet
from twin.network.road import BuildOptions
from twin.population.config import PopulationConfig
from twin.population.destinations import HOME, SCHOOL, SHOP, THROUGH, WORK
from twin.population.plans import Stop, Tour, Tours
from twin.population.synthesis import day_legs, synthesize

MAPS = Path(__file__).resolve().parents[1] / "maps"
OAKLAND = MAPS / "west-oakland.osm.bz2"
BALTIMORE = MAPS / "baltimore.osm.pbf"
MI = 1.609344  # km


def _survey_lognormal() -> dict[int, stats.rv_continuous]:
    """Trip-length distributions (km) from the survey figures in the module docstring."""

    def gap(sigma: float) -> float:  # mean 10.5 mi and P(< 2 mi) = 0.35
        mu = np.log(10.5) - sigma**2 / 2
        return stats.norm.cdf((np.log(2.0) - mu) / sigma) - 0.35

    sigma = optimize.brentq(gap, 0.3, 3.0)
    median_all = 10.5 * MI * np.exp(-(sigma**2) / 2)
    median_work = 12.0 * MI * np.exp(-0.5)
    return {
        SHOP: stats.lognorm(s=sigma, scale=median_all),
        WORK: stats.lognorm(s=1.0, scale=median_work),
        SCHOOL: stats.lognorm(s=1.0, scale=4.0),
    }


def _expected_outside(net, origin: np.ndarray, purpose: np.ndarray, n_dir: int = 72) -> float:
    """Mean over trips and directions of the survey's share beyond 1.2 x the edge distance."""
    hull = shapely.MultiPoint(np.column_stack([net.node_x_m, net.node_y_m])).convex_hull
    theta = (np.arange(n_dir) + 0.5) * 2 * np.pi / n_dir
    x = np.repeat(net.node_x_m[origin], n_dir)
    y = np.repeat(net.node_y_m[origin], n_dir)
    t = np.tile(theta, len(origin))
    far = 1e6
    rays = shapely.linestrings(
        np.stack([np.column_stack([x, y]),
                  np.column_stack([x + far * np.cos(t), y + far * np.sin(t)])], axis=1)
    )  # fmt: skip
    reach_km = shapely.length(shapely.intersection(rays, hull)).reshape(len(origin), n_dir) / 1e3
    dists = _survey_lognormal()
    p = np.empty(len(origin))
    for k in np.unique(purpose):
        sel = purpose == k
        p[sel] = dists[int(k)].sf(1.2 * reach_km[sel]).mean(axis=1)
    return float(p.mean())


def _first_stops(pop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tours = pop.default_tours
    first = tours.stop_offsets[:-1]
    origin = pop.households.home_node[tours.household]
    return origin, tours.stop_purpose[first], tours.stop_outside[first]


def _trip_lengths_mi(pop, legs) -> tuple[np.ndarray, np.ndarray]:
    """(length in miles, crosses the edge) of every household vehicle trip: the road
    distance inside the map (zone skim) plus the distance driven outside it."""
    driven = legs.driven & (legs.household >= 0)
    z = pop.zones
    inside_km = z.dist_km[z.node_zone[legs.origin_node], z.node_zone[legs.dest_node]]
    wholly_outside = (legs.origin_node == legs.dest_node) & (legs.outside_post_m > 0)
    inside_km = np.where(wholly_outside, 0.0, inside_km)
    km = inside_km + (legs.outside_pre_m + legs.outside_post_m) / 1e3
    return km[driven] / MI, legs.crosses[driven]


@pytest.fixture(scope="module")
def oakland():
    net = load_roadnet(OAKLAND, BuildOptions())
    pop = synthesize(net, OAKLAND, PopulationConfig(), seed=42)
    return net, pop, day_legs(pop, pop.default_tours)


@pytest.fixture(scope="module")
def baltimore():
    net = load_roadnet(BALTIMORE, BuildOptions())
    pop = synthesize(net, BALTIMORE, PopulationConfig(), seed=42)
    return net, pop, day_legs(pop, pop.default_tours)


def test_small_map_share_follows_the_survey_distribution(oakland):
    net, pop, _ = oakland
    origin, purpose, outside = _first_stops(pop)
    expected = _expected_outside(net, origin, purpose)
    assert 0.85 <= expected <= 0.99  # the documented range for a ~1 km extract
    tol = 3 * np.sqrt(expected * (1 - expected) / len(outside)) + 0.02
    assert abs(outside.mean() - expected) < tol


def test_large_map_keeps_more_trips_inside(oakland, baltimore):
    net, pop, legs = baltimore
    rng = np.random.default_rng(0)
    origin, purpose, outside = _first_stops(pop)
    sample = rng.choice(len(origin), 600, replace=False)
    expected = _expected_outside(net, origin[sample], purpose[sample], n_dir=36)
    assert abs(outside.mean() - expected) < 0.05
    share = {}
    for name, (_, _, lg) in (("oakland", oakland), ("baltimore", (net, pop, legs))):
        driven = lg.driven & (lg.household >= 0)
        share[name] = lg.crosses[driven].mean()
    assert share["baltimore"] < share["oakland"] - 0.15
    # work trips are the longest: they leave a mid-sized map most often
    by = {k: outside[purpose == k].mean() for k in (WORK, SHOP)}
    assert by[WORK] > by[SHOP]


@pytest.mark.parametrize("which", ["oakland", "baltimore"])
def test_trip_lengths_stay_within_the_survey_ranges(which, request):
    _, pop, legs = request.getfixturevalue(which)
    miles, crosses = _trip_lengths_mi(pop, legs)
    assert 7.0 <= miles.mean() <= 13.0
    assert 2.5 <= np.median(miles) <= 7.0
    assert miles.max() <= 2 * 100 + 10  # capped at 100 mi, plus the inside part
    # the trips that cross the edge are the long ones
    if (~crosses).any():
        assert np.median(miles[crosses]) > np.median(miles[~crosses])


def test_outside_legs_leave_and_come_back_through_gateways(baltimore):
    net, pop, legs = baltimore
    own = legs.household >= 0
    # a car leaves the map on a leg going outside whose previous leg (same tour) did not
    # (the legs of a tour are consecutive); later legs between outside stops stay out there
    was_out = np.r_[False, (legs.tour[1:] == legs.tour[:-1]) & (legs.outside_post_m[:-1] > 0)]
    leave = own & (legs.outside_post_m > 0) & ~was_out
    enter = own & (legs.outside_pre_m > 0)
    wholly = own & (legs.outside_post_m > 0) & was_out
    assert leave.sum() > 0 and wholly.sum() > 0
    assert (legs.origin_node[wholly] == legs.dest_node[wholly]).all()
    # every car that leaves the map comes back: one entry per exit, tour by tour
    assert np.array_equal(
        np.bincount(legs.tour[leave], minlength=len(pop.default_tours)),
        np.bincount(legs.tour[enter], minlength=len(pop.default_tours)),
    )
    points = shapely.points(net.node_x_m, net.node_y_m)
    hull = shapely.MultiPoint(np.column_stack([net.node_x_m, net.node_y_m])).convex_hull
    from twin.population.external import cut_ends

    # at the edge, or where the extract cut a main road (test_a_road_cut_inside_the_hull...)
    at_edge = (shapely.distance(points, hull.exterior) < 250.0) | cut_ends(net)
    assert at_edge[legs.dest_node[leave]].all() and at_edge[legs.origin_node[enter]].all()
    assert (legs.purpose[enter] == HOME).all()  # default tours: back home after the stops
    # the return waits out the drive outside, at 45 km/h: from the gateway to the stop and
    # back (>= 2 x MIN_OUTSIDE_M), or, after a hop between two outside stops, that hop and
    # the drive back (the hop itself may be short)
    back = enter & legs.driven
    prev = legs.after[back]
    hop = legs.origin_node[prev] == legs.dest_node[prev]  # the previous leg wholly outside
    least_m = np.where(hop, legs.outside_post_m[prev] + legs.outside_pre_m[back], 2 * 500.0)
    assert (prev >= 0).all() and (legs.outside_post_m[prev] > 0).all()
    assert (legs.min_dwell_s[back] >= least_m / (45 / 3.6) - 1e-6).all()
    # through traffic stays as it was: its share of all vehicle trips
    through = legs.purpose == THROUGH
    assert abs(through.sum() / legs.driven.sum() - pop.cfg.through_share) < 0.005
    assert not legs.crosses[through].any()


def test_switching_it_off_keeps_every_stop_inside(baltimore):
    net, pop, legs = baltimore
    off = synthesize(net, BALTIMORE, PopulationConfig(external_trips=False), seed=42)
    assert not off.default_tours.stop_outside.any()
    legs_off = day_legs(off, off.default_tours)
    assert not legs_off.crosses.any()
    assert len(legs_off) == len(legs)  # the same trips, some of them now beyond the edge
    shorter = synthesize(net, BALTIMORE, PopulationConfig(trip_length_scale=0.5), seed=42)
    assert shorter.default_tours.stop_outside.mean() < pop.default_tours.stop_outside.mean()


def test_outside_stops_survive_python_tours(baltimore):
    _, pop, _ = baltimore
    tours = pop.default_tours.take(np.arange(200))
    back = Tours.from_lists([(int(h), [t]) for h, t in zip(tours.household, tours.to_list(),
                                                             strict=True)])  # fmt: skip
    for name in ("stop_node", "stop_outside_m", "stop_entry_node", "stop_depart_s"):
        assert np.array_equal(getattr(back, name), getattr(tours, name))
    plain = Tours.from_lists([(0, [Tour(0, 0, 0.0, [Stop("shop", 1, 60.0)])])])
    assert not plain.stop_outside.any()


def test_no_car_is_lost_over_a_day(tmp_path):
    """A full day on west-oakland: every car that drives out through a gateway is driven back
    in, after its time outside, and arrives home."""
    from twin.model import CityModel
    from twin.scenario import load_scenario

    path = tmp_path / "wo.toml"
    path.write_text(
        f'seed = 42\n[map]\nfile = "{OAKLAND}"\n[time]\nstart = "00:00"\nduration = "24h"\n'
        'report_interval = "1h"\n[energy]\nenabled = false\n'
    )
    model = CityModel(load_scenario(path))
    results = model.run(progress=False)
    trips = results.tables["trips"]
    legs = model.population.legs
    leg = trips["trip_id"].to_numpy()
    status = trips["status"].to_numpy()
    own = legs.household[leg] >= 0
    out = own & (legs.outside_post_m[leg] > 0)
    back = own & (legs.outside_pre_m[leg] > 0)
    assert out.sum() > 100
    # none lost on the way, none stuck outside; a trip that set out in the day's last minutes
    # may still be driving at midnight
    late = trips["depart_plan_s"].to_numpy() > 23.5 * 3600
    assert (status[~late] == "arrived").all()
    assert np.isin(status[late], ["arrived", "running"]).all()
    # every car the simulation drives out is driven back in: the car's next simulated leg
    # re-enters the map (a car whose home is a gateway node leaves without driving inside)
    after = trips["after_trip_id"].to_numpy()
    returns = set(after[back].tolist())
    planned_back = np.flatnonzero((legs.household >= 0) & (legs.outside_pre_m > 0) & legs.driven)
    return_of = {}  # for the leg that drove each car out, the leg that brings it back
    for k in planned_back.tolist():
        j = int(legs.after[k])
        while j >= 0 and legs.origin_node[j] == legs.dest_node[j]:  # stops outside, or a
            j = int(legs.after[j])  # home at the edge (the car leaves without driving in)
        return_of[j] = k
    simulated = set(leg.tolist())
    late = 0
    for j in leg[out].tolist():
        k = return_of[j]
        if legs.depart_s[k] >= 24 * 3600.0:  # its plan ends the day outside: back tomorrow
            late += 1
        else:
            assert k in simulated and j in returns
    assert late < 0.05 * out.sum()
    due = planned_back[legs.depart_s[planned_back] < 24 * 3600.0]
    due = due[legs.origin_node[due] != legs.dest_node[due]]  # not entering right at home
    assert back.sum() == len(due)  # every return planned within the day was driven
    kpis = results.kpi_table().set_index("kpi")["value"]
    assert kpis["population.external_trip_share"] > 0.85
    # a car re-enters only after it left and waited out its drive and stay outside
    planned = model.population.trips
    dwell = dict(zip(planned.trip_id.tolist(), planned.min_dwell_s.tolist(), strict=True))
    by_id = trips.set_index("trip_id")
    checked = 0
    for k in np.flatnonzero(back & (after >= 0)):
        prev = by_id.loc[after[k]]
        assert legs.outside_post_m[after[k]] > 0  # it follows the car's drive out
        assert prev["status"] == "arrived"
        assert dwell[int(leg[k])] >= 2 * 500.0 / (45 / 3.6) - 1e-6
        assert trips["depart_s"].iloc[k] >= prev["arrive_s"] + dwell[int(leg[k])] - 1.0
        checked += 1
    assert checked > 0.9 * back.sum()


def test_distance_to_the_edge_matches_shapely(oakland):
    """The ray-to-hull distance against a plain shapely reference, from inside the map and
    from nodes on its boundary (looking inwards: the far side; outwards: 0)."""
    from twin.population.external import ExternalModel

    net, _, _ = oakland
    model = ExternalModel.build(net)
    rng = np.random.default_rng(1)
    node = rng.integers(0, net.n_nodes, 400)
    theta = rng.uniform(0, 2 * np.pi, 400)
    x, y = net.node_x_m[node], net.node_y_m[node]
    ours = model.boundary_m(x, y, theta)
    hull = shapely.MultiPoint(np.column_stack([net.node_x_m, net.node_y_m])).convex_hull
    far = 1e6
    rays = shapely.linestrings(
        np.stack([np.column_stack([x, y]),
                  np.column_stack([x + far * np.cos(theta), y + far * np.sin(theta)])], axis=1)
    )  # fmt: skip
    ref = shapely.length(shapely.intersection(rays, hull))
    assert np.allclose(ours, ref, atol=0.01)


def _grid_with_a_cut_road():
    """A 5 x 5 grid (400 m blocks, secondary roads), a 6.6 km primary road from its north-east
    corner east-north-east (so the hull reaches far past the grid), and a 900 m primary stub
    east from the middle of its east side that ends there: a road cut by the extract, 313 m
    inside the hull. The primary roads have 2 lanes each way."""
    from twin.network import synthetic as syn

    ii, jj = np.meshgrid(np.arange(5), np.arange(5))
    grid = np.column_stack([ii.ravel() * 400.0, jj.ravel() * 400.0])
    extra = np.array([[8000.0, 3200.0], [2500.0, 800.0]])
    xy = np.vstack([grid, extra]) + np.array([syn.ORIGIN_X_M, syn.ORIGIN_Y_M])
    G = syn._graph(xy, [])
    opts = {"lanes": 1, "speed_mps": syn.DEFAULT_SPEED_MPS}
    way = 0
    for j in range(5):
        for i in range(5):
            n = 5 * j + i
            for m in ([n + 1] if i < 4 else []) + ([n + 5] if j < 4 else []):
                way += 1
                syn._add_link(G, n, m, way, 400.0, **opts)
                syn._add_link(G, m, n, way, 400.0, **opts)
    primary = {"lanes": 2, "speed_mps": syn.DEFAULT_SPEED_MPS, "highway": "primary"}
    for a, b, length_m in ((24, 25, float(np.hypot(6400, 1600))), (14, 26, 900.0)):
        way += 1
        syn._add_link(G, a, b, way, length_m, **primary)
        syn._add_link(G, b, a, way, length_m, **primary)
    return syn._compile(G, "synthetic: grid with a cut road"), 26


def test_a_road_cut_inside_the_hull_is_a_gateway():
    """Where an irregular extract cut a main road well inside the hull of its nodes, the cut
    end is an exit and entry gateway (and one of through traffic): trips leaving the map
    eastwards from the grid's east side go out there most often, not at the hull's far
    corners."""
    from twin.population.external import ExternalModel, cut_ends
    from twin.population.synthesis import find_gateways

    net, stub = _grid_with_a_cut_road()
    pts = np.column_stack([net.node_x_m, net.node_y_m])
    ring = shapely.LinearRing(pts[[0, 4, 25, 20]])  # the hull, drawn by hand
    assert 300.0 < shapely.distance(shapely.Point(pts[stub]), ring) < 400.0
    assert np.flatnonzero(cut_ends(net)).tolist() == [25, stub]  # the two roads that end
    ext = ExternalModel.build(net)
    assert stub in ext.exit_node and stub in ext.entry_of_exit
    gates = find_gateways(net)
    assert stub in gates.out_node and stub in gates.in_node
    # from the middle of the east side, due east: the line leaves the hull at x = 3,200 m
    n = 4000
    x = np.full(n, net.node_x_m[14])
    y = np.full(n, net.node_y_m[14])
    r = ext.boundary_m(x, y, np.zeros(n))
    assert r == pytest.approx(1600.0, abs=1.0)
    k = ext.choose_exit(x + r, y, np.random.default_rng(5))
    share = np.bincount(k, minlength=len(ext.exit_node)) / n
    assert ext.exit_node[np.argmax(share)] == stub
    assert share.max() > 2 * np.sort(share)[-2]  # over twice as often as any other exit
