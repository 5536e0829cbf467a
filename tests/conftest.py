"""Shared test fixtures: the shipped OSM maps, each read and compiled once per session.

No test writes to the user's network cache: ``TWIN_CACHE_DIR`` points at a private temporary
directory for the whole session (tests that look at the cache itself set their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twin.network.cache import build_roadnet
from twin.network.clip import clip_extract
from twin.network.osm import OsmExtract, read_osm
from twin.network.road import RoadNet

MAPS = Path(__file__).resolve().parent.parent / "maps"

# every map file shipped in maps/, by a short name (baltimore twice: XML and PBF)
SHIPPED_MAPS: dict[str, str] = {
    "west-oakland": "west-oakland.osm.bz2",
    "aguascalientes": "aguascalientes.osm.bz2",
    "baltimore": "baltimore.osm.bz2",
    "baltimore-pbf": "baltimore.osm.pbf",
    "dortmund": "dortmund.osm.bz2",
    "columbus": "columbus.osm.bz2",  # ~35 s to build: tests on it are marked slow
}
# maps cut out of a shipped one by clip_extract(): name -> (source map, fraction of its extent)
CLIPPED_MAPS: dict[str, tuple[str, float]] = {
    "aguascalientes-clipped": ("aguascalientes", 0.4),
}


@pytest.fixture(scope="session", autouse=True)
def _private_network_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWIN_CACHE_DIR", str(tmp_path_factory.mktemp("twin-cache")))
        yield


@pytest.fixture(scope="session")
def map_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``map_file(name)``: the path of a shipped map, or of a clipped one (made on first use)."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name in SHIPPED_MAPS:
            return MAPS / SHIPPED_MAPS[name]
        if name not in made:
            source, fraction = CLIPPED_MAPS[name]
            dst = tmp_path_factory.mktemp("clipped") / f"{name}.osm"
            clip_extract(get(source), dst, fraction)
            made[name] = dst
        return made[name]

    return get


@pytest.fixture(scope="session")
def roadnet(map_file: Callable[[str], Path]) -> Callable[[str], RoadNet]:
    """``roadnet(name)``: the map compiled with default options, built once per session.

    Built with build_roadnet (no cache) so the cache tests start from an empty cache. The
    returned RoadNet is shared between tests: do not modify it.
    """
    built: dict[str, RoadNet] = {}

    def get(name: str) -> RoadNet:
        if name not in built:
            built[name] = build_roadnet(map_file(name))
        return built[name]

    return get


@pytest.fixture(scope="session")
def osm_extract(map_file: Callable[[str], Path]) -> Callable[[str], OsmExtract]:
    """``osm_extract(name)``: twin's read of the map's drivable ways and signals, once."""
    read: dict[str, OsmExtract] = {}

    def get(name: str) -> OsmExtract:
        if name not in read:
            read[name] = read_osm(map_file(name))
        return read[name]

    return get


def traffic_scenario(
    path: Path, map_name: str, *, trips_per_hour: int = 3000, seed: int = 0, extra: str = ""
) -> Path:
    """Write a quick scenario to ``path``: 10 minutes of random trips on a shipped map, traffic
    only (seconds per run), for the tests of evaluations, sweeps and the README's commands."""
    path.write_text(
        f'seed = {seed}\n[map]\nfile = "{MAPS / SHIPPED_MAPS[map_name]}"\n'
        '[time]\nstart = "08:00"\nduration = "10min"\nreport_interval = "5min"\n'
        f'[demand]\nkind = "random"\ntrips_per_hour = {trips_per_hour}\nprofile = "flat"\n'
        f"[population]\nenabled = false\n[energy]\nenabled = false\n{extra}"
    )
    return path
