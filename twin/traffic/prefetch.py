"""Routes computed ahead: the free-flow routes of a trip table's later departures, routed in
departure order by a background thread while the traffic loop runs on the other core.

The thread routes with a frozen copy of the router (:meth:`Router.frozen_copy`), so what
the loop does to its own router (new link times, closures) never reaches these routes: they
are the routes the trips would have got up front, link for link. The traffic simulation takes
each block of routes before the first of its trips is due; where the thread has not started
that block the loop's thread routes it itself with a second frozen copy, and while the thread
is on it, the loop's thread routes the next block nobody started
(:meth:`RoutePrefetch.take`). Which thread routed a block changes nothing in it, so results
do not depend on the threads' timing.
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
    """Routes of ``trips`` (indices into the trip table, in departure order), block by block:
    a daemon thread routes the blocks in order with ``route_ahead``; a block the caller needs
    before the thread has started it, the caller routes itself with ``route_here`` (two
    routers that give the same routes, each used by one thread only)."""

    def __init__(
        self,
        route_ahead: Callable[[np.ndarray, np.ndarray], RouteSet],
        route_here: Callable[[np.ndarray, np.ndarray], RouteSet],
        origins: np.ndarray,
        dests: np.ndarray,
        trips: np.ndarray,
    ) -> None:
        self.trips = trips
        self.bounds = block_bounds(len(trips))
        self._route_ahead, self._route_here = route_ahead, route_here
        self._origins, self._dests = origins, dests
        self._claimed = 0  # blocks before this one are being routed or done
        self._done: dict[int, RouteSet] = {}
        self._error: BaseException | None = None
        self._stop = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="twin-routes", daemon=True)
        self._thread.start()

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def _block(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        block = self.trips[self.bounds[k] : self.bounds[k + 1]]
        return self._origins[block], self._dests[block]

    def _work(self) -> None:
        numba.set_num_threads(1)  # this thread's kernels on one core; the loop has the other
        # the leftover CPU time: never slow the loop or the power flow's thread (where the
        # platform has no per-thread priority, the ordinary one)
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        while True:
            with self._cv:
                if self._stop or self._claimed >= self.n_blocks:
                    self._cv.notify_all()
                    return
                k = self._claimed
                self._claimed += 1
            try:
                routes = self._route_ahead(*self._block(k))
            except BaseException as exc:  # handed to the caller of take()
                with self._cv:
                    self._error = exc
                    self._cv.notify_all()
                return
            with self._cv:
                self._done[k] = routes
                self._cv.notify_all()

    def take(self, k: int) -> RouteSet:
        """Block ``k``'s routes (the trips ``trips[bounds[k]:bounds[k + 1]]``), each block
        taken once: the thread's, or routed here where the thread has not started it; while
        the thread routes block ``k``, this thread routes the next blocks nobody started."""
        while True:
            with self._cv:
                if self._error is not None:
                    raise RuntimeError("routing ahead of the traffic loop failed") from (
                        self._error
                    )
                if k in self._done:
                    return self._done.pop(k)
                if k >= self._claimed:  # not started: route it here (the thread skips it)
                    j = k
                    self._claimed = k + 1
                elif self._claimed < self.n_blocks and self._thread.is_alive():
                    j = self._claimed  # help with the next one rather than wait
                    self._claimed += 1
                elif self._thread.is_alive():
                    self._cv.wait()
                    continue
                else:  # the thread ends only between blocks: it cannot have left k undone
                    raise RuntimeError(f"routes of block {k} lost (a fault in twin)")
            routes = self._route_here(*self._block(j))
            if j == k:
                return routes
            with self._cv:
                self._done[j] = routes

    def close(self) -> None:
        """Stop the thread after its current block (:meth:`take` then routes the blocks
        left in the caller's thread)."""
        with self._cv:
            self._stop = True
        self._thread.join()
