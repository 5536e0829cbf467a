"""The population and grid caches: equal to a fresh synthesis, keyed on everything they depend
on, rebuilt when damaged, plain arrays only, and invisible in a model's results."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import shapely

from twin import synth_cache
from twin.energy.design import GridConfig
from twin.energy.osm_power import read_power_features
from twin.energy.synthesis import synthesize_grid
from twin.network.road import RoadNet
from twin.population.config import PopulationConfig
from twin.population.synthesis import synthesize

MAPS = Path(__file__).resolve().parents[1] / "maps"
BALTIMORE = MAPS / "baltimore.osm.bz2"
OAKLAND = MAPS / "west-oakland.osm.bz2"
SEED = 42


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty cache directory and an empty in-process memo."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TWIN_NO_CACHE", raising=False)
    synth_cache.clear_memo()
    yield tmp_path / "cache"
    synth_cache.clear_memo()


def assert_same(a: object, b: object, path: str = "") -> None:
    """Every array (dtype, shape, values) and scalar equal, recursively; timings aside."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, path
        if a.dtype == object and a.size and isinstance(a.flat[0], shapely.Geometry):
            assert (shapely.to_wkb(a) == shapely.to_wkb(b)).all(), path
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), path
    elif isinstance(a, RoadNet | PopulationConfig | GridConfig | np.random.Generator):
        return  # the caller's own objects (checked by identity where it matters)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k}]")
    elif hasattr(a, "__dict__"):
        assert type(a) is type(b), path
        for k, v in vars(a).items():
            if k != "timings_s":
                assert_same(v, getattr(b, k), f"{path}.{k}")
    else:
        assert a == b or (a != a and b != b), (path, a, b)


def test_cached_population_and_grid_equal_a_fresh_synthesis(cache, roadnet) -> None:
    net = roadnet("baltimore")
    cfg, grid_cfg = PopulationConfig(), GridConfig()
    fresh = synthesize(net, BALTIMORE, cfg, SEED)
    power = read_power_features(BALTIMORE, net.meta["crs"])
    fresh_grid = synthesize_grid(net, fresh.households, power, grid_cfg, seed=SEED)
    for source in ("built", "memo", "disk"):
        if source == "disk":
            synth_cache.clear_memo()
        pop = synth_cache.cached_population(net, BALTIMORE, cfg, SEED)
        assert pop.net is net and pop.cfg is cfg
        assert_same(fresh, pop, source)
        city = synth_cache.cached_grid(net, pop.households, BALTIMORE, grid_cfg, seed=SEED)
        assert_same(fresh_grid, city, source)
        assert city.cfg is grid_cfg and city.grid.name == fresh_grid.grid.name
        assert np.array_equal(city.grid.radial.order, fresh_grid.grid.radial.order)
    kinds = sorted(p.name.split("-")[0] for p in cache.glob("*.npz"))
    assert kinds == ["grid", "popmap", "population", "power"]
    # a run may change what it got (agents write their rows, interventions rescale
    # transformers, agents draw from custom_rng): the next model gets the original
    pop.households.cars[:] = 0
    pop.custom_rng.random(5)
    city.trafo_kva *= 2.0
    city.grid = city.grid.replace(branch_sn_mva=np.ones(city.grid.n_branch))  # Grid: immutable
    again = synth_cache.cached_population(net, BALTIMORE, cfg, SEED)
    assert_same(fresh.households, again.households)
    assert again.custom_rng.random() == fresh.custom_rng.random()
    city2 = synth_cache.cached_grid(net, again.households, BALTIMORE, grid_cfg, seed=SEED)
    assert_same(fresh_grid, city2)


def test_destinations_follow_the_seed_and_settings_not_the_first_cached_run(cache, roadnet) -> None:
    """The attraction points include the homes (``local_shares``), which differ per seed and
    settings: a population from a cache warmed by another seed or other shares still draws
    its destinations as a fresh synthesis does (memo and disk)."""
    net = roadnet("west-oakland")
    first = PopulationConfig()
    synth_cache.cached_population(net, OAKLAND, first, 1)  # warms the map's shared part
    for cfg, seed in ((first, 2), (PopulationConfig(local_shares=(0.9, 0.9, 0.9)), 1)):
        fresh = synthesize(net, OAKLAND, cfg, seed)
        for source in ("built", "memo", "disk"):
            if source == "disk":
                synth_cache.clear_memo()
            pop = synth_cache.cached_population(net, OAKLAND, cfg, seed)
            assert_same(fresh.gravity.attraction, pop.gravity.attraction, f"{source} {seed}")


def test_entries_are_plain_arrays_without_pickle(cache, roadnet) -> None:
    net = roadnet("west-oakland")
    pop = synth_cache.cached_population(net, OAKLAND, PopulationConfig(), 3)
    synth_cache.cached_grid(net, pop.households, OAKLAND, GridConfig(), seed=3)
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == 4
    for path in entries:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                assert data[name].dtype != object, (path.name, name)
    assert not list(cache.glob("*.tmp"))  # written atomically, nothing left behind


def test_keys_follow_seed_settings_map_content_and_code(
    cache, roadnet, tmp_path, monkeypatch
) -> None:
    net = roadnet("west-oakland")
    copy = tmp_path / "oakland.osm.bz2"
    shutil.copyfile(OAKLAND, copy)
    cfg = PopulationConfig()
    pop = synthesize(net, OAKLAND, cfg, 0)
    hh = pop.households

    def keys(
        map_file: Path = copy, cfg: PopulationConfig = cfg, seed: int = 0, households=hh,
        grid_cfg: GridConfig | None = None,
    ) -> tuple[str, ...]:  # fmt: skip
        """(popmap, population, grid, power) keys."""
        return (
            *synth_cache.population_keys(net, map_file, cfg, seed),
            synth_cache.grid_key(net, households, map_file, grid_cfg or GridConfig(), seed),
            synth_cache.power_key(map_file, net.meta["crs"]),
        )

    base = keys()
    renamed = tmp_path / "elsewhere.osm.bz2"
    shutil.copyfile(OAKLAND, renamed)
    assert keys(renamed) == base  # content-keyed
    moved = dataclasses.replace(net, meta={**net.meta, "source": str(renamed)})
    grid_cfg = GridConfig()  # the grid's name carries the network's file name
    assert synth_cache.grid_key(moved, hh, copy, grid_cfg, 0) != base[2]
    seed1 = keys(seed=1)
    assert seed1[0] == base[0] and seed1[1] != base[1] and seed1[2] != base[2]
    other = cfg.model_copy(update={"ev_share": 0.3})
    assert keys(cfg=other)[1] != base[1] and keys(cfg=other)[0] == base[0]
    assert keys(grid_cfg=GridConfig(max_households_per_transformer=150))[2] != base[2]
    changed = dataclasses.replace(hh, cars=np.roll(hh.cars, 1))
    assert keys(households=changed)[2] != base[2]
    with copy.open("ab") as fh:  # the map's content changes: every key changes
        fh.write(b"<!-- an edit -->\n")
    edited = keys()
    assert all(a != b for a, b in zip(edited, base, strict=True))
    monkeypatch.setattr(synth_cache, "code_hash", lambda kind: f"edited {kind}")
    assert all(a != b for a, b in zip(keys(), edited, strict=True))


def test_the_map_is_hashed_once_per_process(tmp_path, monkeypatch) -> None:
    from twin.network import cache as net_cache

    calls: list[Path] = []
    real = net_cache.file_sha256
    monkeypatch.setattr(net_cache, "file_sha256", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(net_cache, "_SHA_MEMO", {})
    path = tmp_path / "map.osm"
    path.write_text("<osm/>")
    first = net_cache.map_sha256(path)
    assert net_cache.map_sha256(str(path)) == first and len(calls) == 1
    path.write_text("<osm></osm>")  # size and mtime change: hashed again
    assert net_cache.map_sha256(path) != first and len(calls) == 2


def test_a_damaged_or_foreign_entry_is_rebuilt(cache, roadnet, caplog) -> None:
    net = roadnet("west-oakland")
    cfg, grid_cfg = PopulationConfig(), GridConfig()
    fresh = synthesize(net, OAKLAND, cfg, 5)
    pop = synth_cache.cached_population(net, OAKLAND, cfg, 5)
    city = synth_cache.cached_grid(net, pop.households, OAKLAND, grid_cfg, seed=5)
    entries = {p.name.split("-")[0]: p for p in cache.glob("*.npz")}
    entries["population"].write_bytes(entries["population"].read_bytes()[:1000])  # truncated
    entries["popmap"].write_bytes(b"not a zip file")
    shutil.copyfile(entries["power"], entries["grid"])  # another entry under the grid's name
    synth_cache.clear_memo()
    again = synth_cache.cached_population(net, OAKLAND, cfg, 5)
    city_again = synth_cache.cached_grid(net, again.households, OAKLAND, grid_cfg, seed=5)
    assert "ignoring unreadable cache entry" in caplog.text
    assert_same(fresh, again)
    assert_same(city, city_again)
    synth_cache.clear_memo()  # and rewritten: read back from disk now
    assert synth_cache.cached_population(net, OAKLAND, cfg, 5).timings_s.keys() == {"cache_load"}


def test_the_cache_can_be_bypassed(cache, roadnet, monkeypatch) -> None:
    net = roadnet("west-oakland")
    monkeypatch.setenv("TWIN_NO_CACHE", "1")
    pop = synth_cache.cached_population(net, OAKLAND, PopulationConfig(), 1)
    synth_cache.cached_grid(net, pop.households, OAKLAND, GridConfig(), seed=1)
    assert not cache.exists() and not len(synth_cache._MEMOS["population"])
    monkeypatch.delenv("TWIN_NO_CACHE")
    synth_cache.cached_population(net, OAKLAND, PopulationConfig(), 1, use_cache=False)
    assert not cache.exists()


def test_a_run_from_a_warm_cache_gives_the_same_kpis(
    cache, roadnet: Callable[[str], RoadNet], monkeypatch
) -> None:
    from twin.model import CityModel
    from twin.scenario import load_scenario

    root = Path(__file__).resolve().parents[1]
    sc = load_scenario(root / "scenarios" / "baltimore-short.toml")
    sc = sc.with_overrides({"time.duration": "5min"})
    net = roadnet("baltimore")

    def kpis() -> dict[str, float]:
        model = CityModel(sc, network=net)
        res = model.run(progress=False)
        return {name: value for name, value, _ in res.kpis if "wall" not in name}

    monkeypatch.setenv("TWIN_NO_CACHE", "1")
    bypassed = kpis()
    assert not cache.exists()
    monkeypatch.delenv("TWIN_NO_CACHE")
    kpis()  # fills the cache
    synth_cache.clear_memo()
    from_disk = kpis()
    from_memo = kpis()
    assert from_disk == bypassed and from_memo == bypassed
    assert bypassed["energy.ticks"] == 5 and bypassed["population.households"] > 10_000
