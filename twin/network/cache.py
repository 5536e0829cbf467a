"""Load a map as a RoadNet, compiling it once and caching the arrays on disk.

The cache key is the SHA-256 of the file's bytes, the build options and the RoadNet format
version, so a changed file or option rebuilds, and a renamed or copied file does not. The
cache lives in ``$TWIN_CACHE_DIR`` (default ``~/.cache/twin``); entries are plain ``.npz``
files (no pickle) and can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from importlib import metadata
from pathlib import Path

from twin.errors import MapError
from twin.network.road import FORMAT_VERSION, BuildOptions, RoadNet

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where compiled networks are kept."""
    return Path(os.environ.get("TWIN_CACHE_DIR", Path.home() / ".cache" / "twin"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_SHA_MEMO: dict[tuple[str, int, int], str] = {}
_SHA_MEMO_ENTRIES = 64


def map_sha256(path: str | Path) -> str:
    """:func:`file_sha256`, memoised in this process per (resolved path, size, mtime): a
    process that builds many models on one map hashes it once."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    digest = _SHA_MEMO.get(key)
    if digest is None:
        digest = file_sha256(p)
        if len(_SHA_MEMO) >= _SHA_MEMO_ENTRIES:
            _SHA_MEMO.clear()
        _SHA_MEMO[key] = digest
    return digest


def builder_code_hash() -> str:
    """A hash of the code that builds networks, so a change to it never serves stale
    entries (defaults, filters and compile rules live in these modules)."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        if module.name not in ("plot.py", "synthetic.py"):
            digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(path: Path, options: BuildOptions) -> str:
    """A key that changes with the file's content, the options or the format."""
    parts = {
        "file": map_sha256(path),
        "options": options.as_dict(),
        "format": FORMAT_VERSION,
        "osmnx": metadata.version("osmnx"),
        "code": builder_code_hash(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def build_roadnet(
    path: str | Path, options: BuildOptions | None = None, *, progress: bool = False
) -> RoadNet:
    """Read, clean and compile a map file, without the cache; ``progress`` shows a bar."""
    from tqdm.auto import tqdm

    from twin.network.compile import compile_roadnet  # osmnx and friends: imported on need
    from twin.network.graph import build_graph
    from twin.network.osm import read_osm

    path = Path(path)
    options = options or BuildOptions()
    timings: dict[str, float] = {}
    with tqdm(
        total=3, desc=f"building {path.name}", disable=None if progress else True, leave=False
    ) as bar:
        t0 = time.perf_counter()
        bar.set_postfix_str("reading OSM")
        extract = read_osm(path)
        timings["read_s"] = time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix_str("simplifying and consolidating")
        G, report, attached = build_graph(extract, options)
        timings["graph_s"] = time.perf_counter() - t0 - timings["read_s"]
        bar.update(1)
        if G.number_of_edges() == 0:
            raise MapError(f"{path}: no routable roads left after cleaning the network")
        bar.set_postfix_str("compiling arrays")
        net = compile_roadnet(G, report, attached, options, source=str(path))
        timings["compile_s"] = time.perf_counter() - t0 - timings["read_s"] - timings["graph_s"]
        bar.update(1)
    net.meta["build_timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    log.info("built %s in %.1f s (%s)", path, sum(timings.values()), net.meta["build_timings_s"])
    return net


def load_roadnet(
    path: str | Path,
    options: BuildOptions | None = None,
    *,
    use_cache: bool = True,
    progress: bool = False,
) -> RoadNet:
    """The compiled RoadNet of a map file, from the cache when the file was compiled before."""
    path = Path(path)
    options = options or BuildOptions()
    if not path.is_file():
        raise MapError(f"{path}: map file not found")
    if not use_cache:
        return build_roadnet(path, options, progress=progress)
    entry = cache_dir() / f"roadnet-{cache_key(path, options)}.npz"
    if entry.exists():
        try:
            net = RoadNet.load(entry)
            net.meta["source"] = str(path)
            net.meta["cache"] = str(entry)
            return net
        except Exception as exc:  # stale or damaged (truncated zip, other format): rebuild
            log.warning("ignoring unreadable cache entry %s (%s)", entry, exc)
    net = build_roadnet(path, options, progress=progress)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        net.save(entry)
        net.meta["cache"] = str(entry)
    except OSError as exc:  # a read-only home must not stop a run
        log.warning("could not write the network cache %s (%s)", entry, exc)
    return net
