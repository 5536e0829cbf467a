"""Run independent jobs on the machine's cores, results as they finish, with a progress bar.

A process pool with the "spawn" start method (Numba's threading layer is not fork-safe after
a parallel power-flow solve) and one Numba thread per worker (the workers use the cores; their
kernels need not). With one job, everything runs in this process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from tqdm.auto import tqdm


def _worker_init() -> None:
    import numba

    numba.set_num_threads(1)


def default_jobs(n_items: int, jobs: int | None = None) -> int:
    """``jobs`` (or the machine's cores), at most ``n_items``, at least 1."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    return max(1, min(jobs or os.cpu_count() or 1, n_items))


def map_unordered(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    jobs: int | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> Iterator[Any]:
    """``fn(item)`` for every item, yielded as each finishes (``fn`` must be importable)."""
    items = list(items)
    n_jobs = default_jobs(len(items), jobs)
    bar = tqdm(total=len(items), desc=desc, unit="run", disable=None if progress else True)
    with bar:
        if n_jobs == 1:
            for item in items:
                yield fn(item)
                bar.update(1)
            return
        ctx = get_context("spawn")
        with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(fn, item) for item in items]
            for fut in as_completed(futures):
                yield fut.result()
                bar.update(1)
