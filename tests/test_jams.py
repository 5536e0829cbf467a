"""Where the traffic stood: the streets with the most vehicle-hours halted, in the gridlock
warning of ``twin run`` and of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import traffic_scenario

from twin.cli import main
from twin.report.build import warnings
from twin.report.data import RunDir
from twin.results import gridlock_warning
from twin.traffic.jams import UNTAGGED, jam_lines, worst_queues

NETWORK = pd.DataFrame(
    {
        "link": [0, 1, 2, 3, 4],
        "name": ["Main Street", "Main Street", "", "Oak Avenue", None],
        "highway": ["primary", "primary", "motorway_link", "tertiary", "residential"],
        "lanes": [2, 2, 1, 1, 1],
        "lanes_tagged": [True, True, False, False, False],
    }
)


def _links(queues: dict[tuple[int, int], float]) -> pd.DataFrame:
    """A links table of two 15-minute bins from 07:00; ``queues[(link, bin)]``: the halted
    vehicles averaged over the bin (zero where not given)."""
    rows = [
        {
            "t_start_s": 25_200.0 + 900.0 * b,
            "t_end_s": 26_100.0 + 900.0 * b,
            "link": link,
            "flow_vph": 100.0,
            "mean_queue_veh": queues.get((link, b), 0.0),
        }
        for link in range(5)
        for b in range(2)
    ]
    return pd.DataFrame(rows)


# a bin is a quarter of an hour: q halted vehicles over it are q / 4 vehicle-hours
QUEUES = {(0, 0): 4.0, (0, 1): 8.0, (1, 0): 16.0, (2, 1): 20.0, (3, 1): 24.0}


def test_streets_rank_by_vehicle_hours_halted():
    worst = worst_queues(_links(QUEUES), NETWORK)
    # Main Street: (4 + 8 + 16) / 4 = 7; Oak Avenue 24 / 4 = 6; the unnamed ramp 20 / 4 = 5
    assert list(worst["street"]) == ["Main Street", "Oak Avenue", "unnamed motorway_link (link 2)"]
    assert list(worst["halted_veh_h"]) == [7.0, 6.0, 5.0]
    main = worst.iloc[0]
    assert main["worst_link"] == 1  # 4 veh-h against link 0's 3
    assert main["worst_bin_start_s"] == 25_200.0  # 1 + 4 in the first bin, 2 in the second
    assert (main["highway"], main["lanes"], main["lanes_tagged"]) == ("primary", 2, True)
    assert worst.iloc[1]["worst_bin_start_s"] == 26_100.0
    assert list(worst_queues(_links(QUEUES), NETWORK, k=2)["street"]) == [
        "Main Street",
        "Oak Avenue",
    ]


def test_unnamed_links_count_alone():
    queues = {(2, 0): 4.0, (4, 0): 8.0}  # two unnamed links: not one "street"
    worst = worst_queues(_links(queues), NETWORK)
    assert list(worst["street"]) == [
        "unnamed residential (link 4)",
        "unnamed motorway_link (link 2)",
    ]
    assert list(worst["halted_veh_h"]) == [2.0, 1.0]


def test_nothing_to_say_without_tables_or_queues():
    assert worst_queues(None, NETWORK).empty
    assert worst_queues(_links(QUEUES), None).empty
    assert worst_queues(_links({}), NETWORK).empty
    assert worst_queues(_links(QUEUES).drop(columns="mean_queue_veh"), NETWORK).empty
    assert jam_lines(worst_queues(None, None)) == []


def test_only_main_roads_with_untagged_lanes_are_pointed_out():
    lines = jam_lines(worst_queues(_links(QUEUES), NETWORK))
    assert lines[0].startswith("  where vehicles stood longest")
    main, oak, ramp = lines[1:]
    assert "Main Street (primary, 2 lanes): 7 veh-h, most in the bin from 07:00" in main
    assert f"Oak Avenue (tertiary, 1 lane, {UNTAGGED})" in oak
    assert UNTAGGED not in ramp  # a ramp has one lane by its class: nothing to point out
    kpis = {"traffic.trips_completed": 10, "traffic.vehicles_gridlocked": 5}
    warning = gridlock_warning(kpis, lines)
    assert warning.splitlines()[-4:] == lines
    assert "--set map.untagged_lanes.secondary=2" in warning
    assert "untagged_lanes" not in gridlock_warning(kpis, [lines[0], main, ramp])
    assert gridlock_warning(kpis) == gridlock_warning(kpis, [])


@pytest.fixture
def jammed(tmp_path: Path) -> Path:
    """West Oakland at 30,000 random trips an hour for 15 minutes: it jams."""
    return traffic_scenario(
        tmp_path / "jam.toml",
        "west-oakland",
        trips_per_hour=30_000,
        seed=3,
        extra='[traffic]\ngridlock_after = "60s"\n',
    )


def test_a_jammed_run_says_where_it_stood(jammed, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(jammed), "-o", str(out), "--no-progress", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "WARNING: the network gridlocked" in printed
    where = printed.split("where vehicles stood longest")[1].splitlines()[1:6]
    assert len(where) == 5 and all(line.startswith("  - ") for line in where)
    # the first named street's vehicle-hours, summed here from the run's own tables
    links = pd.read_parquet(out / "links.parquet")
    net = pd.read_parquet(out / "network.parquet")
    line = next(w for w in where if not w.startswith("  - unnamed"))
    street = line[4 : line.index(" (")]
    mine = links[links["link"].isin(net.loc[net["name"] == street, "link"])]
    veh_h = (mine["mean_queue_veh"] * (mine["t_end_s"] - mine["t_start_s"])).sum() / 3600
    assert veh_h > 0 and f": {veh_h:,.0f} veh-h" in line
    assert set(net["lanes_tagged"]) <= {True, False}
    # the report's warning names the same street
    assert street in warnings(RunDir(out))
