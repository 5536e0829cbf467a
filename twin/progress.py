"""What a run is doing, for the person waiting on it.

While the twin is built, :func:`status` says what it is doing ("synthesising households...",
"compiling the traffic kernels (first run only, ~1 min)..."); while it runs,
:class:`RunProgress` shows a tqdm bar when stderr is a terminal and otherwise (CI logs, pipes)
a plain line every 10 % of the simulated time with the clock time and the seconds elapsed.

Status and plain progress lines go to the ``twin.progress`` logger at INFO, so a library user
sees them only when logging is configured; the command line calls :func:`show` to print them
on stderr as ``twin: ...`` lines (not with ``--no-progress``).
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

LOGGER = logging.getLogger("twin.progress")

#: what each component's construction is doing (see twin.model.COMPONENTS)
BUILDING = {
    "population": "synthesising households and their day plans...",
    "traffic": "computing routes and preparing the traffic engine...",
    "energy": "synthesising the distribution grid and its loads...",
    "control": "loading the control policies...",
}
#: the Numba entry points each component calls; a kernel is cold when none has a fresh cache
KERNELS = {
    "traffic": ("twin.traffic.kernel", ("run_steps",)),
    "energy": ("twin.energy.powerflow_kernel", ("sweep", "sweep_parallel")),
}
KERNEL_LABELS = {"traffic": "traffic", "energy": "power-flow"}


def status(message: str) -> None:
    """Say what the twin is doing now (a ``twin: ...`` line on stderr under the CLI)."""
    LOGGER.info(message)


class _StderrHandler(logging.Handler):
    """Prints to whatever ``sys.stderr`` is at the time (pytest swaps it between tests)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # pragma: no cover - a closed stream must not stop a run
            self.handleError(record)


def show(on: bool = True) -> None:
    """Print status and progress lines on stderr (``on``), or stop printing them."""
    for handler in [h for h in LOGGER.handlers if isinstance(h, _StderrHandler)]:
        LOGGER.removeHandler(handler)
    if on:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("twin: %(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
        LOGGER.propagate = False
    else:
        LOGGER.setLevel(logging.NOTSET)
        LOGGER.propagate = True


def on_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _in_notebook() -> bool:
    from tqdm.auto import tqdm as auto_tqdm

    return "notebook" in auto_tqdm.__module__


def loading_network(map_file: str | Path, options: Any) -> None:
    """Say whether the road network comes from the cache or is built (slower, once)."""
    from twin.network.cache import cache_dir, cache_key

    path = Path(map_file)
    try:
        cached = (cache_dir() / f"roadnet-{cache_key(path, options)}.npz").exists()
    except OSError:  # a missing map: load_roadnet says so
        return
    if cached:
        status(f"loading the road network of {path.name} (cached)...")
    else:
        status(f"building the road network of {path.name} (first time; cached afterwards)...")


def building(component: str) -> None:
    """Say which component is being built."""
    status(BUILDING.get(component, f"building {component}..."))


def kernels_cached(components: Iterable[str]) -> bool | None:
    """Whether Numba's on-disk cache holds fresh machine code for the kernels the components
    call (False: the first step compiles them); None when that cannot be told."""
    try:
        for name in components:
            if name not in KERNELS:
                continue
            module_name, functions = KERNELS[name]
            module = importlib.import_module(module_name)
            if not any(_has_fresh_cache(getattr(module, f)) for f in functions):
                return False
        return True
    except Exception:  # Numba internals moved: do not guess
        return None


def _has_fresh_cache(dispatcher: Any) -> bool:
    if dispatcher.signatures:  # compiled in this process already
        return True
    index = dispatcher._cache._cache_file._load_index()  # {} when missing or stale
    return bool(index)


def compiling(components: Iterable[str]) -> None:
    """Say so when the first step will compile Numba kernels (a cold cache)."""
    components = list(components)
    if kernels_cached(components) is not False:
        return
    cold = [KERNEL_LABELS[c] for c in components if c in KERNELS and not kernels_cached([c])]
    status(f"compiling the {' and '.join(cold)} kernels (first run only, ~1 min)...")


class RunProgress:
    """Progress over simulated time from ``start_s`` to ``end_s``: a tqdm bar on a terminal
    (or in a notebook), else a plain line each ``every`` of the simulated time (and at the
    end) with the clock time and the wall seconds elapsed. ``enabled=False``: nothing."""

    def __init__(
        self,
        name: str,
        start_s: float,
        end_s: float,
        *,
        enabled: bool = True,
        lines: bool | None = None,
        every: float = 0.1,
    ) -> None:
        self.name, self.start_s, self.end_s = name, start_s, end_s
        self.enabled = enabled
        self.lines = (not (on_terminal() or _in_notebook())) if lines is None else lines
        self.every = every
        self._next = every
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._done_s = start_s

    def __enter__(self) -> RunProgress:
        self._t0 = time.perf_counter()
        if self.enabled and not self.lines:
            from tqdm.auto import tqdm

            span_min = max(self.end_s - self.start_s, 0.0) / 60.0
            self._bar = tqdm(
                total=round(span_min, 3),
                desc=self.name,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            )
        return self

    def update(self, now_s: float) -> None:
        """The simulation has reached ``now_s``."""
        if not self.enabled:
            return
        from twin.timefmt import MAX_CLOCK_S, format_clock

        clock = format_clock(min(max(now_s, 0.0), MAX_CLOCK_S))
        if self._bar is not None:
            self._bar.update(round((now_s - self._done_s) / 60.0, 3))
            self._bar.set_description(f"{self.name} {clock}", refresh=True)
            self._done_s = now_s
            return
        span = self.end_s - self.start_s
        frac = 1.0 if span <= 0 else (now_s - self.start_s) / span
        if frac + 1e-9 >= self._next:
            elapsed = time.perf_counter() - self._t0
            status(f"{self.name}: {clock} simulated ({100 * min(frac, 1.0):.0f} %), "
                   f"{elapsed:.1f} s elapsed")  # fmt: skip
            self._next = (math.floor(frac / self.every + 1e-9) + 1) * self.every

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
