"""Caches of what is synthesised per map: the population, the grid and the map reads they need.

The population (:func:`twin.population.synthesis.synthesize`) and the grid
(:func:`twin.energy.synthesis.synthesize_grid`) depend only on the map, the network, their
settings and the seed, so a model that asks again gets them from here instead of building them:

- **in-process memo**: the last few results per kind (:data:`MEMO_ENTRIES`, at most
  :data:`MEMO_MAX_BYTES` each kind), handed out as deep copies (a run may change its copy: an
  intervention rescales transformers, a Household subclass writes its row, agents draw from
  ``custom_rng``), so a sweep or evaluation worker builds each once;
- **on disk**, beside the road networks in ``$TWIN_CACHE_DIR`` (default ``~/.cache/twin``):

  * ``popmap-KEY.npz``: the map's buildings, land use and POIs, the zones and their skims and
    the gateways (one per map and network: every seed shares them, so a new seed or a fresh
    worker process never reads the OSM file's features again);
  * ``population-KEY.npz``: homes, households, default tours (their stops outside the map
    included) and the destinations' attraction points (a share of them at the homes, so per
    settings and seed too);
  * ``power-KEY.npz``: the map's power features (read only when a grid is built);
  * ``grid-KEY.npz``: the city grid, its :class:`~twin.energy.grid.Grid` included.

Keys hash the map file's bytes (SHA-256, memoised per path, size and mtime), the network's
arrays (so a network built with other options or changed by an intervention is another key),
the settings section (``[population]``, ``[energy.grid]``), the seed, the grid's households, a
hash of the source of the modules that synthesise (a code change never serves a stale entry),
the versions of the numerical libraries and :data:`FORMAT_VERSION`. Entries are plain ``.npz``
(no pickle: strings as categories of fixed-width unicode, polygons as WKB bytes, scalars in a
JSON field), written to a temporary file and renamed into place; an entry that cannot be read
is rebuilt and rewritten. ``TWIN_NO_CACHE=1`` (or ``use_cache=False``) bypasses memo and disk;
deleting the files clears the cache.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import fields, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from twin.network.cache import cache_dir, map_sha256
from twin.network.road import RoadNet
from twin.population.config import PopulationConfig
from twin.population.destinations import Attraction, Gravity, Zones
from twin.population.features import MapFeatures
from twin.population.homes import Homes
from twin.population.households import HouseholdArrays
from twin.population.plans import Tours
from twin.population.synthesis import Gateways, PopulationData, synthesize

if TYPE_CHECKING:
    from twin.energy.design import GridConfig
    from twin.energy.osm_power import PowerFeatures
    from twin.energy.synthesis import CityGrid

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MEMO_ENTRIES = 4  # results kept per kind in one process
MEMO_MAX_BYTES = 256 * 2**20  # ... and at most this many bytes of arrays per kind
NO_CACHE_ENV = "TWIN_NO_CACHE"

# modules (relative to twin/) whose source decides each kind's content; this file is added
_CODE: dict[str, tuple[str, ...]] = {
    "population": (
        "population/config.py", "population/destinations.py", "population/external.py",
        "population/features.py", "population/homes.py", "population/households.py",
        "population/plans.py", "population/synthesis.py", "network/osm.py", "network/tags.py",
        "rng.py", "traffic/profiles.py",
    ),
    "power": ("energy/osm_power.py", "network/osm.py"),
    "grid": (
        "energy/catalogue.py", "energy/design.py", "energy/grid.py", "energy/osm_power.py",
        "energy/siting.py", "energy/synthesis.py", "population/homes.py", "rng.py",
    ),
}  # fmt: skip
_LIBRARIES = ("numpy", "scipy", "shapely", "pyproj", "osmium", "numba")


def enabled(use_cache: bool | None = None) -> bool:
    """``use_cache`` if given, else whether ``$TWIN_NO_CACHE`` is unset (or "0")."""
    if use_cache is not None:
        return use_cache
    return os.environ.get(NO_CACHE_ENV, "").strip() in ("", "0")


# -- keys ---------------------------------------------------------------------------------------


@functools.cache
def code_hash(kind: str) -> str:
    """Hash of the source of the modules that synthesise ``kind`` and of the library versions
    (computed once per process: the code that runs is the code imported)."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for rel in sorted({*_CODE[kind], "synth_cache.py"}):
        digest.update(rel.encode())
        digest.update((root / rel).read_bytes())
    for lib in _LIBRARIES:
        digest.update(f"{lib}={metadata.version(lib)}".encode())
    return digest.hexdigest()[:16]


def arrays_hash(obj: Any) -> str:
    """Hash of every array field of a dataclass (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for f in fields(obj):
        value = getattr(obj, f.name)
        if not isinstance(value, np.ndarray):
            continue
        digest.update(f"{f.name}:{value.dtype.str}:{value.shape}".encode())
        if value.dtype == object:
            digest.update(json.dumps(value.tolist(), default=str).encode())
        else:
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def roadnet_hash(net: RoadNet) -> str:
    """Hash of a network's arrays and of the metadata synthesis reads (crs, road classes, the
    cut ends that are gateways)."""
    meta = {k: net.meta.get(k) for k in ("crs", "highway_classes", "cut_end_nodes")}
    return hashlib.sha256(
        (arrays_hash(net) + json.dumps(meta, sort_keys=True, default=str)).encode()
    ).hexdigest()


def _digest(parts: dict[str, Any]) -> str:
    text = json.dumps({**parts, "format": FORMAT_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def population_keys(
    net: RoadNet, map_file: str | Path, cfg: PopulationConfig, seed: int
) -> tuple[str, str]:
    """(map-level key of features and zones, key of the population) for these inputs."""
    map_key = _digest(
        {"kind": "popmap", "map": map_sha256(map_file), "net": roadnet_hash(net),
         "code": code_hash("population")}
    )  # fmt: skip
    return map_key, _digest(
        {"kind": "population", "map_key": map_key, "cfg": cfg.model_dump(), "seed": int(seed)}
    )


def power_key(map_file: str | Path, crs: str) -> str:
    """Key of a map's power features read in ``crs``."""
    return _digest(
        {"kind": "power", "map": map_sha256(map_file), "crs": crs, "code": code_hash("power")}
    )


def grid_key(
    net: RoadNet, households: HouseholdArrays, map_file: str | Path, cfg: GridConfig, seed: int
) -> str:
    """Key of the grid synthesised for these inputs (the grid's name carries the map's file
    name, so that is part of the key too)."""
    return _digest(
        {"kind": "grid", "map": map_sha256(map_file), "net": roadnet_hash(net),
         "source": Path(str(net.meta.get("source", "city"))).name,
         "households": arrays_hash(households), "cfg": cfg.model_dump(), "seed": int(seed),
         "code": code_hash("grid")}
    )  # fmt: skip


# -- plain-array codec ----------------------------------------------------------------------------


def _encode(
    obj: Any, prefix: str, arrays: dict[str, np.ndarray], meta: dict, skip: tuple[str, ...] = ()
) -> None:
    """Flatten a dataclass into ``arrays`` (numbers) and ``meta`` (scalars, object kinds)."""
    for f in fields(obj):
        if f.name in skip:
            continue
        value, key = getattr(obj, f.name), prefix + f.name
        if is_dataclass(value):
            _encode(value, key + ".", arrays, meta)
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                _encode_objects(value, key, arrays, meta)
            else:
                arrays[key] = value
        elif isinstance(value, np.generic):
            meta["scalars"][key] = value.item()
        elif value is None or isinstance(value, bool | int | float | str):
            meta["scalars"][key] = value
        else:
            raise TypeError(f"cannot store {key} ({type(value).__name__}) as plain arrays")


def _encode_objects(value: np.ndarray, key: str, arrays: dict, meta: dict) -> None:
    items = value.tolist()
    if value.ndim != 1:
        raise TypeError(f"cannot store {key}: object array of shape {value.shape}")
    if all(isinstance(v, str) for v in items):
        cats, codes = np.unique(np.array(items, dtype=str), return_inverse=True)
        arrays[key + "@str"] = cats
        arrays[key + "@codes"] = codes.astype(np.int32)
        meta["objects"][key] = "str"
    elif all(isinstance(v, shapely.Geometry) for v in items):
        wkb = shapely.to_wkb(value)
        arrays[key + "@wkb"] = np.frombuffer(b"".join(wkb.tolist()), dtype=np.uint8)
        lengths = np.fromiter((len(b) for b in wkb.tolist()), dtype=np.int64, count=len(wkb))
        arrays[key + "@offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        meta["objects"][key] = "wkb"
    else:
        raise TypeError(f"cannot store {key}: objects other than strings or geometries")


def _decode_objects(key: str, arrays: dict, kind: str) -> np.ndarray:
    if kind == "str":
        return arrays[key + "@str"].astype(object)[arrays[key + "@codes"]]
    buf, off = arrays[key + "@wkb"].tobytes(), arrays[key + "@offsets"]
    out = np.empty(len(off) - 1, dtype=object)
    out[:] = [shapely.from_wkb(buf[a:b]) for a, b in itertools.pairwise(off.tolist())]
    return out


def _decode(cls: type, prefix: str, arrays: dict, meta: dict, *, given=None, nested=None) -> Any:
    """The dataclass ``cls`` from what :func:`_encode` wrote; KeyError if something is missing."""
    given, nested = given or {}, nested or {}
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        key = prefix + f.name
        if not f.init:
            continue
        if f.name in given:
            kwargs[f.name] = given[f.name]
        elif f.name in nested:
            kwargs[f.name] = _decode(nested[f.name], key + ".", arrays, meta)
        elif key in arrays:
            kwargs[f.name] = arrays[key]
        elif key in meta["objects"]:
            kwargs[f.name] = _decode_objects(key, arrays, meta["objects"][key])
        elif key in meta["scalars"]:
            kwargs[f.name] = meta["scalars"][key]
        else:
            raise KeyError(f"{key} is not in the entry")
    return cls(**kwargs)


def _new_meta(kind: str, key: str) -> dict:
    return {"kind": kind, "key": key, "format": FORMAT_VERSION, "scalars": {}, "objects": {}}


def entry_path(kind: str, key: str) -> Path:
    """Where the entry of ``kind`` (popmap, population, power, grid) and ``key`` lives."""
    return cache_dir() / f"{kind}-{key}.npz"


def _write(kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write an entry atomically (a temporary file renamed into place); a failure is logged."""
    path = entry_path(kind, key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            np.savez(fh, allow_pickle=False, meta_json=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:  # a read-only cache must not stop a run
        log.warning("could not write the cache entry %s (%s)", path, exc)
        tmp.unlink(missing_ok=True)


def _read(kind: str, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """(arrays, meta) of an entry, or None when there is none or it cannot be read."""
    path = entry_path(kind, key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
            if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
                raise ValueError(f"entry of format {meta.get('format')}, key {meta.get('key')}")
            arrays = {k: data[k] for k in data.files if k != "meta_json"}
    except Exception as exc:  # truncated, damaged or foreign: rebuilt by the caller
        log.warning("ignoring unreadable cache entry %s (%s): rebuilding it", path, exc)
        return None
    return arrays, meta


def _unreadable(kind: str, key: str, exc: Exception) -> None:
    log.warning(
        "ignoring unreadable cache entry %s (%s): rebuilding it", entry_path(kind, key), exc
    )


def _nbytes(arrays: dict[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in arrays.values())


def _nbytes_of(*objs: Any) -> int:
    """Bytes of the arrays of some objects (their attributes, lists of them, one level down)."""
    total = 0
    for obj in objs:
        for value in vars(obj).values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, np.ndarray):
                    total += item.nbytes
                elif hasattr(item, "__dict__"):
                    total += sum(a.nbytes for a in vars(item).values() if isinstance(a, np.ndarray))
    return total


# -- in-process memo ------------------------------------------------------------------------------


class _Memo:
    """A small LRU of canonical objects (never handed out: callers get deep copies)."""

    def __init__(self, entries: int = MEMO_ENTRIES, max_bytes: int = MEMO_MAX_BYTES) -> None:
        self.entries, self.max_bytes = entries, max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, obj: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        with self._lock:
            self._items[key] = (obj, nbytes)
            self._items.move_to_end(key)
            while len(self._items) > self.entries or (
                sum(n for _, n in self._items.values()) > self.max_bytes
            ):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_MEMOS: dict[str, _Memo] = {kind: _Memo() for kind in ("popmap", "population", "power", "grid")}


def clear_memo() -> None:
    """Forget what this process keeps in memory (the disk entries stay)."""
    for memo in _MEMOS.values():
        memo.clear()


# -- population -----------------------------------------------------------------------------------


class _PopMap:
    """What a map's population shares across settings and seeds."""

    def __init__(self, features: MapFeatures, zones: Zones, gateways: Gateways) -> None:
        self.features: MapFeatures = features
        self.zones: Zones = zones
        self.gateways: Gateways = gateways


def _popmap(key: str) -> _PopMap | None:
    """The map-level part from the memo or the disk (a canonical object: copy before use)."""
    memo = _MEMOS["popmap"]
    hit = memo.get(key)
    if hit is not None:
        return hit
    entry = _read("popmap", key)
    if entry is None:
        return None
    arrays, meta = entry
    try:
        part = _PopMap(
            _decode(MapFeatures, "features.", arrays, meta),
            _decode(Zones, "zones.", arrays, meta),
            _decode(Gateways, "gateways.", arrays, meta),
        )
    except Exception as exc:
        _unreadable("popmap", key, exc)
        return None
    memo.put(key, part, _nbytes(arrays))
    return part


def _store_population(data: PopulationData, map_key: str, key: str, write_map: bool) -> None:
    if write_map:
        arrays: dict[str, np.ndarray] = {}
        meta = _new_meta("popmap", map_key)
        _encode(data.features, "features.", arrays, meta)
        _encode(data.zones, "zones.", arrays, meta)
        _encode(data.gateways, "gateways.", arrays, meta)
        _write("popmap", map_key, arrays, meta)
    arrays, meta = {}, _new_meta("population", key)
    for i, a in enumerate(data.gravity.attraction):
        _encode(a, f"attraction{i}.", arrays, meta)
    _encode(data.homes, "homes.", arrays, meta)
    _encode(data.households, "households.", arrays, meta)
    _encode(data.default_tours, "tours.", arrays, meta)
    meta["timings_s"] = data.timings_s
    _write("population", key, arrays, meta)


def _population_from_disk(
    key: str, part: _PopMap, net: RoadNet, cfg: PopulationConfig, seed: int
) -> tuple[PopulationData, int] | None:
    entry = _read("population", key)
    if entry is None:
        return None
    arrays, meta = entry
    try:
        part = copy.deepcopy(part)
        attraction = [_decode(Attraction, f"attraction{i}.", arrays, meta) for i in range(3)]
        data = PopulationData(
            net, cfg, seed, part.features,
            _decode(Homes, "homes.", arrays, meta),
            _decode(HouseholdArrays, "households.", arrays, meta),
            part.zones, Gravity(part.zones, attraction),
            _decode(Tours, "tours.", arrays, meta),
            part.gateways,
        )  # fmt: skip
    except Exception as exc:
        _unreadable("population", key, exc)
        return None
    return data, _nbytes(arrays)


def _handout(obj: Any, substitute: dict[int, Any]) -> Any:
    """A deep copy of a canonical object, with the given objects (by id) used as they are."""
    return copy.deepcopy(obj, dict(substitute))


def cached_population(
    net: RoadNet,
    map_file: str | Path,
    cfg: PopulationConfig,
    seed: int,
    *,
    use_cache: bool | None = None,
) -> PopulationData:
    """:func:`~twin.population.synthesis.synthesize`, from the memo or the disk when these
    inputs were synthesised before (see the module); equal to a fresh synthesis."""
    if not enabled(use_cache):
        return synthesize(net, map_file, cfg, seed)
    t0 = time.perf_counter()
    try:
        map_key, key = population_keys(net, map_file, cfg, seed)
    except OSError:  # the map cannot be read: let synthesis say so
        return synthesize(net, map_file, cfg, seed)
    memo = _MEMOS["population"]
    canon = memo.get(key)
    if canon is not None:
        data = _handout(canon, {id(canon.net): net, id(canon.cfg): cfg})
        data.timings_s = {"memo": time.perf_counter() - t0}
        return data
    part = _popmap(map_key)
    loaded = _population_from_disk(key, part, net, cfg, seed) if part is not None else None
    if loaded is not None:
        canon, nbytes = loaded
        canon.timings_s = {"cache_load": time.perf_counter() - t0}
        log.info("population from the cache (%s)", entry_path("population", key).name)
    else:
        if part is not None:  # the map's features and zones are known: only the seed's part
            part = copy.deepcopy(part)
            canon = synthesize(net, map_file, cfg, seed, features=part.features, zones=part.zones)
        else:
            canon = synthesize(net, map_file, cfg, seed)
        t1 = time.perf_counter()
        _store_population(canon, map_key, key, write_map=part is None)
        canon.timings_s["cache_write"] = time.perf_counter() - t1
        if part is None:
            shared = _PopMap(canon.features, canon.zones, canon.gateways)
            _MEMOS["popmap"].put(map_key, copy.deepcopy(shared), _nbytes_of(shared))
        nbytes = _nbytes_of(canon.homes, canon.households, canon.default_tours,
                            *canon.gravity.attraction)  # fmt: skip
    memo.put(key, canon, nbytes)
    data = _handout(canon, {id(canon.net): net, id(canon.cfg): cfg})
    data.timings_s = dict(canon.timings_s)
    return data


# -- power features and grid ----------------------------------------------------------------------


def cached_power_features(
    map_file: str | Path, crs: str, *, use_cache: bool | None = None
) -> PowerFeatures:
    """:func:`~twin.energy.osm_power.read_power_features`, from the memo or the disk."""
    from twin.energy.osm_power import PowerFeatures, read_power_features

    if not enabled(use_cache):
        return read_power_features(map_file, crs)
    try:
        key = power_key(map_file, crs)
    except OSError:
        return read_power_features(map_file, crs)
    memo = _MEMOS["power"]
    canon = memo.get(key)
    if canon is None:
        entry = _read("power", key)
        if entry is not None:
            try:
                canon = _decode(PowerFeatures, "", *entry)
            except Exception as exc:
                _unreadable("power", key, exc)
        if canon is None:
            canon = read_power_features(map_file, crs)
            arrays, meta = {}, _new_meta("power", key)
            _encode(canon, "", arrays, meta)
            _write("power", key, arrays, meta)
            entry = (arrays, meta)
        memo.put(key, canon, _nbytes(entry[0]))
    return copy.deepcopy(canon)


def cached_grid(
    net: RoadNet,
    households: HouseholdArrays,
    map_file: str | Path,
    cfg: GridConfig,
    seed: int = 0,
    *,
    use_cache: bool | None = None,
) -> CityGrid:
    """:func:`~twin.energy.synthesis.synthesize_grid` of ``households`` on ``net`` with the
    map's power features, from the memo or the disk when built before; equal to a fresh one."""
    from twin.energy.grid import Grid
    from twin.energy.osm_power import read_power_features
    from twin.energy.synthesis import CityGrid, synthesize_grid

    if not enabled(use_cache):
        return synthesize_grid(
            net, households, read_power_features(map_file, net.meta["crs"]), cfg, seed=seed
        )
    t0 = time.perf_counter()
    try:
        key = grid_key(net, households, map_file, cfg, seed)
    except OSError:
        return synthesize_grid(
            net, households, read_power_features(map_file, net.meta["crs"]), cfg, seed=seed
        )
    memo = _MEMOS["grid"]
    canon = memo.get(key)
    if canon is not None:
        city = _handout(canon, {id(canon.cfg): cfg})
        city.timings_s = {"memo": time.perf_counter() - t0}
        return city
    entry = _read("grid", key)
    if entry is not None:
        arrays, meta = entry
        try:
            canon = _decode(
                CityGrid, "", arrays, meta, given={"cfg": cfg, "timings_s": {}},
                nested={"grid": Grid},
            )  # fmt: skip
            canon.grid.validate()
            canon.timings_s = {"cache_load": time.perf_counter() - t0}
            log.info("grid from the cache (%s)", entry_path("grid", key).name)
        except Exception as exc:
            _unreadable("grid", key, exc)
            canon = None
    if canon is None:
        power = cached_power_features(map_file, net.meta["crs"], use_cache=True)
        canon = synthesize_grid(net, households, power, cfg, seed=seed)
        t1 = time.perf_counter()
        arrays, meta = {}, _new_meta("grid", key)
        _encode(canon, "", arrays, meta, skip=("cfg", "timings_s"))
        meta["timings_s"] = canon.timings_s
        _write("grid", key, arrays, meta)
        canon.timings_s["cache_write"] = time.perf_counter() - t1
    memo.put(key, canon, _nbytes(arrays))
    city = _handout(canon, {id(canon.cfg): cfg})
    city.timings_s = dict(canon.timings_s)
    return city
