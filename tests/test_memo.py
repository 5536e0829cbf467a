"""The per-process memo of map reads: equal, independent copies; a changed file is re-read."""

from __future__ import annotations

import os

import numpy as np

from twin.memo import file_memo


def test_memo_hands_out_independent_copies_and_rereads_a_changed_file(tmp_path):
    calls = []

    @file_memo(maxsize=2)
    def read(path, scale):
        calls.append(path)
        return {"values": np.arange(3) * scale, "text": open(path).read()}

    f = tmp_path / "map.osm"
    f.write_text("one")
    a = read(f, 2)
    a["values"][0] = 99  # a run changing what it got ...
    b = read(f, 2)
    assert b["values"].tolist() == [0, 2, 4]  # ... changes nothing for the next run
    assert len(calls) == 1
    read(f, 3)  # other arguments: another entry
    assert len(calls) == 2
    f.write_text("two!")
    os.utime(f, ns=(1, 1))  # a changed file (size and mtime) is read again
    assert read(f, 2)["text"] == "two!" and len(calls) == 3


def test_models_in_one_process_see_the_same_households(tmp_path, monkeypatch):
    from pathlib import Path

    from twin.model import CityModel
    from twin.scenario import load_scenario

    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    maps = Path(__file__).resolve().parents[1] / "maps"
    path = tmp_path / "x.toml"
    path.write_text(
        f'[map]\nfile = "{maps / "west-oakland.osm.bz2"}"\n[time]\nduration = "10min"\n'
        'report_interval = "5min"\n[traffic]\nenabled = false\n'
    )
    sc = load_scenario(path)
    first, second = CityModel(sc), CityModel(sc)  # the second reads features from the memo
    h1, h2 = first.population.data.households, second.population.data.households
    assert np.array_equal(h1.home_node, h2.home_node) and np.array_equal(h1.cars, h2.cars)
    assert np.array_equal(first.energy.city.trafo_node, second.energy.city.trafo_node)
