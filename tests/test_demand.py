"""Demand: random trips (profile, weighting, min length, scale) and trip CSV import/export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from scipy import stats

from twin.errors import TwinError
from twin.network.road import RoadNet
from twin.rng import stream
from twin.traffic.demand import (
    Trips,
    parse_depart_s,
    random_trips,
    read_trips_csv,
    write_trips_csv,
)
from twin.traffic.profiles import PROFILES, hourly_shares

TRIP_DATA = Path(__file__).resolve().parent / "data" / "trips"
DAY_S = 86400.0


@pytest.fixture(scope="module")
def net(roadnet) -> RoadNet:
    return roadnet("aguascalientes")


def trips_of(net: RoadNet, seed: int = 1, **kw) -> Trips:
    kw.setdefault("start_s", 0.0)
    kw.setdefault("end_s", DAY_S)
    if "trips_per_hour" not in kw:
        kw.setdefault("n_trips", 2000)
    return random_trips(net, rng=stream(seed, "trips"), **kw)


def same(a: Trips, b: Trips) -> bool:
    names = ("trip_id", "origin_node", "dest_node", "depart_s", "after_trip_id", "min_dwell_s")
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in names)


# -- random trips ----------------------------------------------------------------------------


def test_same_seed_same_trips_other_seed_other_trips(net):
    a, b, c = trips_of(net, 7), trips_of(net, 7), trips_of(net, 8)
    assert same(a, b)
    assert not np.array_equal(a.depart_s, c.depart_s)
    assert not np.array_equal(a.origin_node, c.origin_node)


def test_departures_in_window_sorted_and_numbered(net):
    start_s, end_s = 7.5 * 3600, 9.25 * 3600
    trips = trips_of(net, start_s=start_s, end_s=end_s, n_trips=3000)
    assert len(trips) == 3000
    assert trips.depart_s.min() >= start_s and trips.depart_s.max() < end_s
    assert np.all(np.diff(trips.depart_s) >= 0)
    assert np.array_equal(trips.trip_id, np.arange(3000))
    assert trips.origin_node.dtype == np.int32 and trips.depart_s.dtype == np.float64


def test_hourly_histogram_follows_weekday_profile(net):
    trips = trips_of(net, n_trips=20_000)
    counts = np.bincount((trips.depart_s // 3600).astype(int), minlength=24)
    shares = hourly_shares("weekday")
    assert np.abs(counts / 20_000 - shares).max() < 0.01
    assert stats.chisquare(counts, shares * 20_000).pvalue > 1e-3
    # the same sample is far from flat: the test has power
    assert stats.chisquare(counts, np.full(24, 20_000 / 24)).pvalue < 1e-12
    # the shipped profile has its morning and evening peaks where the source has them
    assert int(np.argmax(shares[:12])) == 7 and int(np.argmax(shares[12:])) + 12 == 17


def test_partial_window_weighs_partial_hours(net):
    trips = trips_of(net, start_s=7.5 * 3600, end_s=9 * 3600, n_trips=20_000)
    w7, w8 = PROFILES["weekday"][7], PROFILES["weekday"][8]
    expected = 0.5 * w7 / (0.5 * w7 + w8)
    assert np.mean(trips.depart_s < 8 * 3600) == pytest.approx(expected, abs=0.015)


def test_window_past_midnight_wraps_the_profile(net):
    trips = trips_of(net, profile="flat", start_s=23 * 3600, end_s=25 * 3600, n_trips=4000)
    assert trips.depart_s.max() < 25 * 3600
    assert np.mean(trips.depart_s >= DAY_S) == pytest.approx(0.5, abs=0.03)


def test_min_trip_m_respected(net):
    trips = trips_of(net, min_trip_m=1500.0)
    dist_m = np.hypot(
        net.node_x_m[trips.origin_node] - net.node_x_m[trips.dest_node],
        net.node_y_m[trips.origin_node] - net.node_y_m[trips.dest_node],
    )
    assert dist_m.min() >= 1500.0
    with pytest.raises(TwinError, match="min_trip_m"):
        trips_of(net, n_trips=10, min_trip_m=1e6)


def test_count_from_rate_and_demand_scale(net):
    two_hours = {"start_s": 7 * 3600, "end_s": 9 * 3600}
    assert len(trips_of(net, trips_per_hour=600, **two_hours)) == 1200
    assert len(trips_of(net, trips_per_hour=600, demand_scale=2.0, **two_hours)) == 2400
    assert len(trips_of(net, n_trips=500, demand_scale=2.0)) == 1000
    assert len(trips_of(net, n_trips=500, demand_scale=0.0)) == 0


def test_origins_and_destinations_weighted_by_length_times_lanes(net):
    n = 40_000
    trips = trips_of(net, n_trips=n, min_trip_m=0.0)
    weight = net.link_length_m * net.link_lanes
    for nodes, ends in ((trips.origin_node, net.link_from), (trips.dest_node, net.link_to)):
        expected = np.bincount(ends, weights=weight, minlength=net.n_nodes)
        expected *= n / expected.sum()
        counts = np.bincount(nodes, minlength=net.n_nodes)
        assert stats.chisquare(counts, expected).pvalue > 1e-3
        # unweighted links (one per link) would not fit this sample
        uniform = np.bincount(ends, minlength=net.n_nodes) * (n / net.n_links)
        assert stats.chisquare(counts, uniform).pvalue < 1e-12


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_trips": 10, "trips_per_hour": 10}, "exactly one"),
        ({"n_trips": -1}, ">= 0"),
        ({"n_trips": 10, "profile": "holiday"}, "unknown demand profile 'holiday'"),
        ({"n_trips": 10, "profile": np.ones(23)}, "24 hourly weights"),
        ({"n_trips": 10, "profile": np.zeros(24)}, "not all zero"),
        ({"n_trips": 10, "start_s": 3600, "end_s": 3600}, "start_s < end_s"),
    ],
)
def test_random_trips_rejects_bad_arguments(net, kw, match):
    with pytest.raises(TwinError, match=match):
        trips_of(net, **kw)


def test_profile_zero_inside_window_is_an_error(net):
    profile = np.r_[np.zeros(12), np.ones(12)]
    with pytest.raises(TwinError, match="no trips between"):
        trips_of(net, n_trips=10, profile=profile, start_s=0, end_s=12 * 3600)


def test_frame_round_trip(net):
    trips = trips_of(net, n_trips=50)
    frame = trips.to_frame(net)
    assert frame["origin_osm_node"].tolist() == net.node_osmid[trips.origin_node].tolist()
    assert np.allclose(frame["dest_lat"], net.node_lat[trips.dest_node])
    assert same(Trips.from_frame(frame), trips)
    shuffled = Trips.from_frame(frame.sample(frac=1.0, random_state=0))
    assert same(shuffled, trips)  # sorted again on construction


# -- CSV -------------------------------------------------------------------------------------


def test_csv_round_trip(net, tmp_path):
    trips = trips_of(net, n_trips=500)
    write_trips_csv(trips, net, tmp_path / "trips.csv")
    back, report = read_trips_csv(tmp_path / "trips.csv", net)
    assert same(back, trips)
    assert (report.rows, report.trips, report.same_node_skipped) == (500, 500, 0)
    assert report.max_snap_m < 0.05


def test_parse_depart_forms():
    assert parse_depart_s("07:15") == 7 * 3600 + 15 * 60
    assert parse_depart_s("07:15:30") == 7 * 3600 + 15 * 60 + 30
    assert parse_depart_s("25:00") == 25 * 3600
    assert parse_depart_s("07:15:30.5") == 26130.5
    assert parse_depart_s("26100.5") == 26100.5
    for bad in ("7:60", "07:15:61", "-5", "nan", "7h15", "07:15:30:00", "", "49:00", "200000"):
        with pytest.raises(ValueError):
            parse_depart_s(bad)


def test_shipped_lonlat_example(net):
    trips, report = read_trips_csv(TRIP_DATA / "aguascalientes-lonlat.csv", net)
    assert report.rows == 6 and report.same_node_skipped == 1 and report.trips == 5
    assert report.ignored_columns == ("purpose",)
    assert 0 < report.max_snap_m < 100
    assert trips.trip_id.tolist() == [101, 102, 103, 104, 105]
    assert trips.depart_s.tolist() == [26100.0, 26130.0, 27000.0, 62400.0, 63000.5]
    # each point went to its nearest node (brute force, in the map's metres)
    rows = pd.read_csv(TRIP_DATA / "aguascalientes-lonlat.csv").iloc[:5]
    x, y = Transformer.from_crs("EPSG:4326", net.meta["crs"], always_xy=True).transform(
        rows["origin_lon"].to_numpy(), rows["origin_lat"].to_numpy()
    )
    nearest = np.argmin(np.hypot(net.node_x_m - x[:, None], net.node_y_m - y[:, None]), axis=1)
    assert trips.origin_node.tolist() == nearest.tolist()


def test_shipped_osm_example(net):
    trips, report = read_trips_csv(TRIP_DATA / "aguascalientes-osm.csv", net)
    assert (report.rows, report.trips, report.max_snap_m) == (5, 5, 0.0)
    assert trips.trip_id.tolist() == [0, 1, 2, 3, 4]
    assert net.node_osmid[trips.origin_node].tolist() == [
        953015098, 886346149, 889901709, 889901720, 945482912,
    ]  # fmt: skip
    assert net.node_osmid[trips.dest_node[3]] == 8553425880


def test_same_node_rows_skipped_and_counted(net, tmp_path):
    a, b = (int(v) for v in net.node_osmid[:2])
    path = tmp_path / "t.csv"
    path.write_text(f"depart,origin_osm_node,dest_osm_node\n08:00,{a},{a}\n\n08:01,{a},{b}\n")
    trips, report = read_trips_csv(path, net)
    assert (report.rows, report.trips, report.same_node_skipped) == (2, 1, 1)
    assert trips.trip_id.tolist() == [1]  # numbered by data row, blank lines not counted


def problems_of(path: Path, text: str, net: RoadNet, **kw) -> str:
    path.write_text(text)
    with pytest.raises(TwinError) as info:
        read_trips_csv(path, net, **kw)
    return str(info.value)


def test_error_empty_file_and_header_only(net, tmp_path):
    msg = problems_of(tmp_path / "empty.csv", "", net)
    assert "empty.csv" in msg and "empty" in msg and "origin_osm_node" in msg
    msg = problems_of(tmp_path / "h.csv", "depart,origin_osm_node,dest_osm_node\n", net)
    assert "h.csv" in msg and "no trips" in msg


def test_error_missing_columns_lists_expected_sets(net, tmp_path):
    msg = problems_of(tmp_path / "m.csv", "depart,origin_lon,origin_lat\n08:00,1,2\n", net)
    assert "m.csv, line 1: missing columns" in msg
    assert "depart,origin_lon,origin_lat,dest_lon,dest_lat" in msg
    assert "depart,origin_osm_node,dest_osm_node" in msg


def test_error_both_column_sets(net, tmp_path):
    header = "depart,origin_lon,origin_lat,dest_lon,dest_lat,origin_osm_node,dest_osm_node\n"
    assert "both lon/lat and OSM" in problems_of(tmp_path / "b.csv", header, net)


def test_error_unparseable_values_name_line_and_column(net, tmp_path):
    a, b = (int(v) for v in net.node_osmid[:2])
    text = (
        "depart,origin_osm_node,dest_osm_node,trip_id\n"
        f"08:00,{a},{b},1\n"
        f"8h00,{a},{b},2\n"
        f"08:00,{a},x{b},3\n"
        f"08:00,{a},{b}\n"
        f"08:00,{a},{b},1\n"
        f"08:00,{a},12345,5\n"
    )
    msg = problems_of(tmp_path / "bad.csv", text, net)
    lines = msg.splitlines()
    assert lines[0] == f"{tmp_path / 'bad.csv'}: 5 problem(s) in the trip table:"
    assert lines[1].startswith(f"{tmp_path / 'bad.csv'}, line 3: column 'depart'")
    assert "line 4: column 'dest_osm_node': expected an integer OSM node id, got 'x" in lines[2]
    assert "line 5: expected 4 fields, got 3" in lines[3]
    assert "line 6: trip_id 1 repeats line 2" in lines[4]
    assert "line 7: dest_osm_node 12345 is not a network node" in lines[5]


def test_points_too_far_are_reported_and_skipped_inside_or_outside_the_box(net, tmp_path):
    west = net.bbox_lonlat()[0]
    lon0, lat0 = net.node_lon[0], net.node_lat[0]
    lon1, lat1 = net.node_lon[1], net.node_lat[1]
    text = (
        "trip_id,depart,origin_lon,origin_lat,dest_lon,dest_lat\n"
        f"1,08:00,{west - 0.01},{lat0},{lon0},{lat0}\n"  # ~800 m west of the box
        f"2,08:00,{lon0},{lat0},{lon0 + 0.0005},{lat0}\n"  # ~52 m east of node 0
        f"3,08:00,{lon1},{lat1},{lon0},{lat0}\n"  # on nodes
        f"4,08:00,{west - 1e-7},{net.node_lat[np.argmin(net.node_lon)]},{lon1},{lat1}\n"
        f"5,08:00,{lon0},{lat0},{lon0},nan\n"
    )
    msg = problems_of(tmp_path / "far.csv", text, net, snap_max_m=20.0)
    assert "far.csv, line 6: column 'dest_lat': expected a number, got 'nan'" in msg
    path = tmp_path / "far.csv"
    path.write_text("\n".join(text.splitlines()[:5]) + "\n")
    trips, report = read_trips_csv(path, net, snap_max_m=20.0)
    # 1 cm outside the box next to a node snaps like a point inside; too-far points are skipped
    assert sorted(trips.trip_id.tolist()) == [3, 4]
    assert report.too_far_skipped == 2 and report.trips == 2
    assert (
        "line 2: origin" in report.too_far_examples[0]
        and " m from the" in report.too_far_examples[0]
    )
    assert "line 3: dest" in report.too_far_examples[1]
    # with the default snap_max_m the near point is accepted
    trips, report = read_trips_csv(path, net)
    assert 2 in trips.trip_id.tolist() and 20.0 < report.max_snap_m < 500.0
    # a table of another map: every trip too far is an error
    path.write_text(text.splitlines()[0] + "\n1,08:00,10.0,50.0,10.01,50.0\n")
    with pytest.raises(TwinError, match="none of the 1 trips has both ends within"):
        read_trips_csv(path, net)


def test_error_lists_at_most_ten_problems(net, tmp_path):
    text = "depart,origin_osm_node,dest_osm_node\n" + "x,1,2\n" * 15
    msg = problems_of(tmp_path / "many.csv", text, net)
    lines = msg.splitlines()
    assert "15 problem(s)" in lines[0]
    assert len(lines) == 1 + 10 + 1 and lines[-1] == "... and 5 more problems"
    assert "line 11:" in lines[10]


def test_missing_file_is_a_twin_error(net, tmp_path):
    with pytest.raises(TwinError, match=r"nope\.csv"):
        read_trips_csv(tmp_path / "nope.csv", net)


def test_frame_dtypes(net):
    frame = trips_of(net, n_trips=5).to_frame()
    assert list(frame.columns) == [
        "trip_id", "depart_s", "origin_node", "dest_node", "after_trip_id", "min_dwell_s",
    ]  # fmt: skip
    assert isinstance(frame, pd.DataFrame) and frame["trip_id"].dtype == np.int64
    assert frame["after_trip_id"].dtype == np.int64 and frame["min_dwell_s"].dtype == np.float64


# -- trip chaining ---------------------------------------------------------------------------


def tours_of(net: RoadNet, n: int = 100) -> Trips:
    """Outbound trips and chained returns (trip id + n) with dwell times."""
    out = trips_of(net, n_trips=n, end_s=3600.0)
    return Trips(
        trip_id=np.r_[out.trip_id, out.trip_id + n],
        origin_node=np.r_[out.origin_node, out.dest_node],
        dest_node=np.r_[out.dest_node, out.origin_node],
        depart_s=np.r_[out.depart_s, out.depart_s + 600.0],
        after_trip_id=np.r_[np.full(n, -1), out.trip_id],
        min_dwell_s=np.r_[np.zeros(n), np.linspace(0.0, 1800.0, n)],
    )


def test_unchained_trips_have_no_predecessor_and_no_dwell(net):
    trips = trips_of(net, n_trips=20)
    assert trips.after_trip_id.tolist() == [-1] * 20 and trips.after_trip_id.dtype == np.int64
    assert trips.min_dwell_s.tolist() == [0.0] * 20 and trips.min_dwell_s.dtype == np.float64
    assert not trips.chained and (trips.after_index() == -1).all()


def test_sorting_keeps_chains_aligned():
    trips = Trips(
        trip_id=[10, 11, 12],
        origin_node=[0, 1, 2],
        dest_node=[1, 2, 0],
        depart_s=[300.0, 200.0, 100.0],
        after_trip_id=[-1, 10, 11],
        min_dwell_s=[0.0, 5.0, 7.5],
    )
    assert trips.trip_id.tolist() == [12, 11, 10]
    assert trips.after_trip_id.tolist() == [11, 10, -1]
    assert trips.min_dwell_s.tolist() == [7.5, 5.0, 0.0]
    assert trips.origin_node.tolist() == [2, 1, 0]
    assert trips.after_index().tolist() == [1, 2, -1]  # positions in the sorted table
    assert trips.chained


@pytest.mark.parametrize(
    ("after", "dwell", "match"),
    [
        ([-1, 99, -1], None, r"1 trip\(s\) .* e\.g\. trip 2 follows 99, not a trip_id"),
        ([-1, -5, -1], None, "trip 2 follows -5, not a trip_id"),
        ([-1, 2, -1], None, "trip 2 follows itself"),
        ([3, 1, 2], None, r"3 trip\(s\).* cycle \(1 -> 3 -> 2 -> 1\)"),
        ([-1, 3, 2], None, r"2 trip\(s\).* cycle \(2 -> 3 -> 2\)"),
        (None, [0.0, -1.0, 0.0], "min_dwell_s must be finite and >= 0.* trip 2 has -1"),
        (None, [0.0, 0.0, np.nan], "min_dwell_s must be finite and >= 0.* trip 3 has nan"),
        ([-1, 1], None, "same length"),
        (None, [0.0], "same length"),
        ([-1, 1.5, -1], None, "after_trip_id must be integers"),
    ],
)
def test_trips_reject_bad_chains(after, dwell, match):
    with pytest.raises(ValueError, match=match):
        Trips([1, 2, 3], [0, 1, 2], [1, 2, 0], [0.0, 1.0, 2.0], after, dwell)


def test_a_trip_may_follow_one_that_leaves_later():
    # planned times need not be in order: the kernel just holds the earlier-planned trip
    trips = Trips([1, 2], [0, 1], [1, 0], [500.0, 100.0], after_trip_id=[-1, 1])
    assert trips.trip_id.tolist() == [2, 1] and trips.after_index().tolist() == [1, -1]


def test_frame_round_trip_with_chains(net):
    trips = tours_of(net, 30)
    frame = trips.to_frame(net)
    assert same(Trips.from_frame(frame), trips)
    assert same(Trips.from_frame(frame.sample(frac=1.0, random_state=1)), trips)
    plain = Trips.from_frame(frame.drop(columns=["after_trip_id", "min_dwell_s"]))
    assert not plain.chained


def test_csv_round_trip_with_chains(net, tmp_path):
    trips = tours_of(net)
    write_trips_csv(trips, net, tmp_path / "tours.csv")
    header = (tmp_path / "tours.csv").read_text().splitlines()[0]
    assert (
        header == "trip_id,depart,origin_lon,origin_lat,dest_lon,dest_lat,after_trip_id,min_dwell_s"
    )
    back, report = read_trips_csv(tmp_path / "tours.csv", net)
    assert same(back, trips) and report.ignored_columns == ()
    # unchained tables keep the plain format
    write_trips_csv(trips_of(net, n_trips=5), net, tmp_path / "plain.csv")
    header = (tmp_path / "plain.csv").read_text().splitlines()[0]
    assert header == "trip_id,depart,origin_lon,origin_lat,dest_lon,dest_lat"


def test_csv_chain_columns_accept_empty_and_minus_one(net, tmp_path):
    a, b = (int(v) for v in net.node_osmid[:2])
    path = tmp_path / "chain.csv"
    path.write_text(
        "depart,origin_osm_node,dest_osm_node,after_trip_id,min_dwell_s\n"
        f"08:00,{a},{b},,\n"
        f"08:30,{b},{a},0,90\n"
        f"09:00,{a},{b},-1,\n"
        f"09:30,{b},{a},1,12.5\n"
    )
    trips, _ = read_trips_csv(path, net)  # without a trip_id column: row numbers from 0
    assert trips.trip_id.tolist() == [0, 1, 2, 3]
    assert trips.after_trip_id.tolist() == [-1, 0, -1, 1]
    assert trips.min_dwell_s.tolist() == [0.0, 90.0, 0.0, 12.5]
    path.write_text(
        f"trip_id,depart,origin_osm_node,dest_osm_node,after_trip_id\n7,08:00,{a},{b},\n"
        f"9,08:30,{b},{a},7\n"
    )
    trips, _ = read_trips_csv(path, net)
    assert trips.after_trip_id.tolist() == [-1, 7] and trips.min_dwell_s.tolist() == [0.0, 0.0]


def test_csv_a_trip_after_a_skipped_row_follows_its_predecessor(net, tmp_path):
    a, b = (int(v) for v in net.node_osmid[:2])
    path = tmp_path / "skip.csv"
    path.write_text(
        "trip_id,depart,origin_osm_node,dest_osm_node,after_trip_id,min_dwell_s\n"
        f"1,08:00,{a},{b},,\n"
        f"2,09:00,{b},{b},1,60\n"  # same node: skipped
        f"3,10:00,{b},{b},2,30\n"  # same node: skipped
        f"4,11:00,{b},{a},3,5\n"
        f"5,12:00,{b},{b},,10\n"  # same node, no predecessor: skipped
        f"6,13:00,{a},{b},5,7\n"
    )
    trips, report = read_trips_csv(path, net)
    assert report.same_node_skipped == 3
    assert trips.trip_id.tolist() == [1, 4, 6]
    assert trips.after_trip_id.tolist() == [-1, 1, -1]
    assert trips.min_dwell_s.tolist() == [0.0, 95.0, 17.0]


def test_csv_chain_errors_name_line_and_column(net, tmp_path):
    a, b = (int(v) for v in net.node_osmid[:2])
    head = "trip_id,depart,origin_osm_node,dest_osm_node,after_trip_id,min_dwell_s\n"
    msg = problems_of(
        tmp_path / "c.csv",
        head + f"1,08:00,{a},{b},x,\n2,08:00,{a},{b},1,-3\n3,08:00,{a},{b},1,nan\n",
        net,
    )
    lines = msg.splitlines()
    assert "c.csv: 3 problem(s)" in lines[0]
    assert lines[1].endswith(
        "c.csv, line 2: column 'after_trip_id': expected a trip_id, "
        "or -1 or empty for none, got 'x'"
    )
    assert "line 3: column 'min_dwell_s': expected seconds >= 0, or empty for 0, got '-3'" in msg
    assert "line 4: column 'min_dwell_s'" in lines[3]
    msg = problems_of(
        tmp_path / "r.csv",
        head
        + f"1,08:00,{a},{b},,\n2,08:00,{a},{b},99,\n3,08:00,{a},{b},3,\n"
        + f"4,08:00,{a},{b},5,\n5,08:00,{a},{b},4,\n",
        net,
    )
    lines = msg.splitlines()
    assert "r.csv: 4 problem(s)" in lines[0]
    assert (
        "r.csv, line 3: column 'after_trip_id': trip 2 follows 99, not a trip_id of the file"
        in lines[1]
    )
    assert "line 4: column 'after_trip_id': trip 3 follows itself" in lines[2]
    assert (
        "line 5: column 'after_trip_id': trips follow each other in a cycle (4 -> 5 -> 4)"
        in lines[3]
    )
    assert "line 6: column 'after_trip_id': trips follow each other in a cycle" in lines[4]
