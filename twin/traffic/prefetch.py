"""Routes computed ahead: the free-flow routes of a trip table's later departures, routed in
departure order by a background thread while the traffic loop runs on the other core.

The thread routes with a frozen copy of the router (:meth:`Router.frozen_copy`), so what
the loop does to its own router (new link times, closures) never reaches these routes: they
are the routes the trips would have got up front, link for link. The traffic simulation takes
each block of routes before the first of its trips is due (:meth:`RoutePrefetch.take` waits
for it when the thread is behind), so results do not depend on the thread's timing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

import numba
import numpy as np

from twin.traffic.route_store import RouteSet

#: most trips routed in one call of the background thread (a block: ~20 ms of routing on
#: Baltimore); the first block has FIRST_BLOCK_TRIPS, each next one twice as many up to this,
#: so that the loop soon has its first routes
BLOCK_TRIPS = 512
FIRST_BLOCK_TRIPS = 32
#: the thread's scheduling priority (Unix nice, 19 the lowest): where the loop and the power
#: flow's thread keep both cores busy, routing ahead must not take their time
NICE = 19


def can_prefetch() -> bool:
    """Whether Numba's threading layer lets two threads run parallel kernels at once (OpenMP
    and TBB do; the built-in workqueue aborts)."""
    try:
        from numba.np.ufunc.parallel import _launch_threads

        _launch_threads()  # chooses the layer (once), as the first parallel kernel would
        return numba.threading_layer() in ("omp", "tbb")
    except (ImportError, ValueError):
        return False


def block_bounds(n: int, first: int = FIRST_BLOCK_TRIPS, most: int = BLOCK_TRIPS) -> list[int]:
    """Where the blocks of ``n`` trips start (and ``n``): sizes first, 2 first, ... most."""
    bounds, size = [0], first
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] + size))
        size = min(2 * size, most)
    return bounds


class RoutePrefetch:
    """Routes of ``trips`` (indices into the trip table, in departure order) computed by
    ``route`` (origins, dests of a block) in a daemon thread, block by block."""

    def __init__(
        self,
        route: Callable[[np.ndarray, np.ndarray], RouteSet],
        origins: np.ndarray,
        dests: np.ndarray,
        trips: np.ndarray,
    ) -> None:
        self.trips = trips
        self.bounds = block_bounds(len(trips))
        self._route, self._origins, self._dests = route, origins, dests
        self._done: dict[int, RouteSet] = {}
        self._error: BaseException | None = None
        self._stop = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="twin-routes", daemon=True)
        self._thread.start()

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def _work(self) -> None:
        numba.set_num_threads(1)  # this thread's kernels on one core; the loop has the other
        # the leftover CPU time: never slow the loop or the power flow's thread (where the
        # platform has no per-thread priority, the ordinary one)
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        for k in range(self.n_blocks):
            if self._stop:
                return
            block = self.trips[self.bounds[k] : self.bounds[k + 1]]
            try:
                routes = self._route(self._origins[block], self._dests[block])
            except BaseException as exc:  # handed to the caller of take()
                with self._cv:
                    self._error = exc
                    self._cv.notify_all()
                return
            with self._cv:
                self._done[k] = routes
                self._cv.notify_all()

    def take(self, k: int) -> RouteSet:
        """Block ``k``'s routes (the trips ``trips[bounds[k]:bounds[k + 1]]``), waiting for
        the thread where it has not routed them yet; each block is taken once."""
        with self._cv:
            while k not in self._done and self._error is None:
                self._cv.wait()
            if self._error is not None:
                raise RuntimeError("routing ahead of the traffic loop failed") from self._error
            return self._done.pop(k)

    def close(self) -> None:
        """Stop the thread after its current block."""
        self._stop = True
        self._thread.join()
