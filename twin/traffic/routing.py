"""Fastest, turn-aware routes on a compiled :class:`~twin.network.road.RoadNet`.

Routing runs on the *link graph*: one vertex per link and one edge per turn movement
(from-link -> to-link), weighted by the to-link's travel time plus a turn penalty by the
movement's type. Turn bans and U-turns are therefore honoured exactly as compiled. Each network
node also has a virtual source vertex with an edge to each of its out-links, weighted by that
link's time. A route from node ``o`` to node ``d`` is a chain of links whose first link leaves
``o`` and whose last link enters ``d``; its cost is the time from leaving ``o`` to arriving at
``d`` (the sum of link times and turn penalties), the minimum over ``d``'s in-links.

Shortest paths come from :func:`scipy.sparse.csgraph.dijkstra`, one call per batch of distinct
origins, and are backtracked for all trips of the batch together (vectorised over trips).
Routes are cached per (origin, destination) pair until the link times or closures change.

A trip whose origin equals its destination has no link to drive: it is not routed
(``ok=False``, empty route, infinite time), like an unreachable trip; the caller reports it
(``origins == dests`` tells the two apart).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_THROUGH, TURN_U, RoadNet

# Turn penalties, s, added to a movement's cost (judgement, not from a standard). They stand
# for the time lost slowing for a turn and giving way, and keep routes plausible: no U-turn to
# save a few seconds, no zig-zag through side streets when one straight street is as short.
U_TURN_PENALTY_S = 60.0  # a U-turn is a last resort (dead ends, closures)
LEFT_TURN_PENALTY_S = 5.0  # crossing opposing traffic
RIGHT_TURN_PENALTY_S = 2.0  # slowing for a tight turn
THROUGH_PENALTY_S = 0.0
TURN_PENALTY_S: tuple[float, ...] = tuple(
    {
        TURN_U: U_TURN_PENALTY_S,
        TURN_LEFT: LEFT_TURN_PENALTY_S,
        TURN_THROUGH: THROUGH_PENALTY_S,
        TURN_RIGHT: RIGHT_TURN_PENALTY_S,
    }[t]
    for t in range(4)
)  # indexed by TURN_*
ORIGIN_BATCH = 256  # distinct origins per dijkstra call: memory ~12 B x batch x (links + nodes)


@dataclass(frozen=True)
class RouteSet:
    """Routes of many trips, CSR: trip ``i`` drives ``links[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray  # int64, len n_trips + 1
    links: np.ndarray  # int32 link indices, in driving order
    time_s: np.ndarray  # float64, route cost per trip (s); inf when not routed
    ok: np.ndarray  # bool, False for unreachable trips and origin == destination

    def __len__(self) -> int:
        return len(self.ok)

    def route(self, trip: int) -> np.ndarray:
        """The links of one trip (empty when not routed)."""
        return self.links[self.offsets[trip] : self.offsets[trip + 1]]


class Router:
    """Fastest routes between network nodes, with link closures and changeable link times.

    ``link_time_s`` (s per link, finite and > 0) defaults to free flow:
    ``link_length_m / link_speed_mps``. ``turn_penalty_s`` (s, indexed by ``TURN_*``)
    defaults to :data:`TURN_PENALTY_S`. The router reads ``net`` and never changes it.

    Routes are cached per (origin, destination) pair; ``cache_hits`` and ``cache_misses``
    count routed trips (origin == destination counts as neither). The cache grows with the
    distinct pairs asked for (a route is ~4 bytes per link) and is dropped by
    :meth:`set_link_times`, :meth:`close_links`, :meth:`open_links` and :meth:`clear_cache`.
    Ties between equally fast routes break the same way on every run.
    """

    def __init__(
        self,
        net: RoadNet,
        *,
        link_time_s: np.ndarray | None = None,
        turn_penalty_s: Sequence[float] = TURN_PENALTY_S,
    ) -> None:
        self.net = net
        pen = np.asarray(turn_penalty_s, dtype=np.float64)
        if pen.shape != (4,) or not np.all(pen >= 0):
            raise ValueError("turn_penalty_s must be 4 non-negative values, indexed by TURN_*")
        self._turn_penalty_s = pen
        n_links = net.n_links
        # the link graph's edges, CSR by source vertex: movements, then virtual sources
        per_vertex = np.concatenate([np.diff(net.link_mov_offsets), np.diff(net.node_out_offsets)])
        self._src = np.repeat(np.arange(n_links + net.n_nodes), per_vertex)
        self._to = np.concatenate([net.mov_to_link, net.node_out_links]).astype(np.int32)
        self._closed = np.zeros(n_links, dtype=bool)
        self._link_time_s = np.empty(n_links)
        self._graph: csr_matrix | None = None
        self._cache: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        self._link_cache: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.set_link_times(
            net.link_length_m / net.link_speed_mps if link_time_s is None else link_time_s
        )

    # -- state -------------------------------------------------------------------------------

    @property
    def link_time_s(self) -> np.ndarray:
        """The link times in use (s), read-only."""
        view = self._link_time_s.view()
        view.flags.writeable = False
        return view

    @property
    def closed_links(self) -> np.ndarray:
        """Indices of the closed links (int32, ascending)."""
        return np.flatnonzero(self._closed).astype(np.int32)

    def set_link_times(self, link_time_s: np.ndarray) -> None:
        """Use these link times (s; e.g. current congested ones) from now on; clears the cache."""
        t = np.asarray(link_time_s, dtype=np.float64)
        if t.shape != (self.net.n_links,):
            raise ValueError(f"link_time_s must have shape ({self.net.n_links},), got {t.shape}")
        if not np.all(np.isfinite(t) & (t > 0)):
            raise ValueError("link_time_s must be finite and > 0 (close a link to forbid it)")
        self._link_time_s[:] = t
        self._invalidate()

    def close_links(self, links: Iterable[int]) -> None:
        """Never route over these links (until reopened); clears the cache."""
        self._closed[self._link_indices(links)] = True
        self._invalidate()

    def open_links(self, links: Iterable[int]) -> None:
        """Reopen closed links; clears the cache."""
        self._closed[self._link_indices(links)] = False
        self._invalidate()

    def clear_cache(self) -> None:
        """Forget the cached routes (the hit and miss counters are kept)."""
        self._cache.clear()
        self._link_cache.clear()

    def _link_indices(self, links: Iterable[int]) -> np.ndarray:
        idx = np.asarray(links if isinstance(links, np.ndarray) else list(links), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.net.n_links):
            raise ValueError(f"link index out of range 0..{self.net.n_links - 1}")
        return idx

    def _invalidate(self) -> None:
        self._graph = None
        self._cache.clear()
        self._link_cache.clear()

    def _link_graph(self) -> csr_matrix:
        if self._graph is None:
            net, n = self.net, self.net.n_links + self.net.n_nodes
            turn_s = self._turn_penalty_s[net.mov_turn]
            weight = self._link_time_s[self._to] + np.concatenate(
                [turn_s, np.zeros(len(net.node_out_links))]
            )
            keep = ~self._closed[self._to]
            keep[: net.n_movements] &= ~self._closed[net.mov_from_link]
            # weights are > 0, so no edge is an explicit zero that csgraph would drop
            self._graph = csr_matrix(
                (weight[keep], (self._src[keep], self._to[keep])), shape=(n, n)
            )
        return self._graph

    # -- queries -----------------------------------------------------------------------------

    def route(self, origin_node: int, dest_node: int) -> np.ndarray | None:
        """The fastest route's links (int32) from one node to another; None if not routable."""
        rs = self.routes([origin_node], [dest_node])
        return rs.route(0) if rs.ok[0] else None

    def route_time_s(self, links: np.ndarray) -> float:
        """The cost (s) of driving a chain of links under the current times and penalties.

        ValueError if two consecutive links are not joined by a movement.
        """
        net, links = self.net, np.asarray(links, dtype=np.int64)
        total = float(self._link_time_s[links].sum())
        for a, b in itertools.pairwise(links.tolist()):
            lo = net.link_mov_offsets[a]
            hit = np.flatnonzero(net.mov_to_link[lo : net.link_mov_offsets[a + 1]] == b)
            if not hit.size:
                raise ValueError(f"no movement from link {a} to link {b}")
            total += self._turn_penalty_s[net.mov_turn[lo + hit[0]]]
        return total

    def routes(self, origins: Sequence[int], dests: Sequence[int]) -> RouteSet:
        """Fastest routes for many trips (node indices), from the cache where possible."""
        o = np.asarray(origins, dtype=np.int64).ravel()
        d = np.asarray(dests, dtype=np.int64).ravel()
        if o.shape != d.shape:
            raise ValueError(f"{len(o)} origins but {len(d)} destinations")
        if o.size and (min(o.min(), d.min()) < 0 or max(o.max(), d.max()) >= self.net.n_nodes):
            raise ValueError(f"node index out of range 0..{self.net.n_nodes - 1}")
        pairs = list(zip(o.tolist(), d.tolist(), strict=True))
        missing = {p: None for p in pairs if p[0] != p[1] and p not in self._cache}
        self.cache_misses += len(missing)
        self.cache_hits += int(np.count_nonzero(o != d)) - len(missing)
        if missing:
            self._solve(np.array(list(missing), dtype=np.int64).reshape(-1, 2))
        return _route_set([_NO_ROUTE if a == b else self._cache[(a, b)] for a, b in pairs])

    def routes_from_links(self, links: Sequence[int], dests: Sequence[int]) -> RouteSet:
        """Fastest continuations for vehicles on ``links`` (link indices) to ``dests`` (node
        indices): the links after the current one (empty when the current link ends at the
        destination). The cost counts the turn off the current link, as every later turn."""
        lk = np.asarray(links, dtype=np.int64).ravel()
        d = np.asarray(dests, dtype=np.int64).ravel()
        if lk.shape != d.shape:
            raise ValueError(f"{len(lk)} links but {len(d)} destinations")
        pairs = list(zip(lk.tolist(), d.tolist(), strict=True))
        missing = {p: None for p in pairs if p not in self._link_cache}
        if missing:
            self._solve(np.array(list(missing), dtype=np.int64).reshape(-1, 2), from_links=True)
        return _route_set([self._link_cache[p] for p in pairs])

    def _solve(self, pairs: np.ndarray, *, from_links: bool = False) -> None:
        """Route (origin, dest) pairs, batch by batch of distinct origins, into the cache;
        origins are nodes, or links with ``from_links``."""
        order = np.argsort(pairs[:, 0], kind="stable")
        pairs = pairs[order]
        uniq, first = np.unique(pairs[:, 0], return_index=True)
        bounds = np.append(first, len(pairs))
        for b in range(0, len(uniq), ORIGIN_BATCH):
            batch = pairs[bounds[b] : bounds[min(b + ORIGIN_BATCH, len(uniq))]]
            self._solve_batch(uniq[b : b + ORIGIN_BATCH], batch, from_links)

    def _solve_batch(self, origins: np.ndarray, pairs: np.ndarray, from_links: bool) -> None:
        """One dijkstra call from the virtual sources of ``origins`` (sorted, distinct), or
        from the origin links themselves."""
        net, n_links = self.net, self.net.n_links
        sources = origins if from_links else n_links + origins
        dist, pred = dijkstra(
            self._link_graph(), directed=True, indices=sources, return_predecessors=True
        )
        row = np.searchsorted(origins, pairs[:, 0])
        # each trip's best in-link of its destination: first of its group sorted by (trip, cost)
        starts, ends = net.node_in_offsets[pairs[:, 1]], net.node_in_offsets[pairs[:, 1] + 1]
        trip = np.repeat(np.arange(len(pairs)), ends - starts)
        cand = net.node_in_links[_ranges(starts, ends)].astype(np.int64)
        cost = dist[row[trip], cand]
        order = np.lexsort((cost, trip))
        head = order[np.r_[True, trip[order][1:] != trip[order][:-1]]] if len(trip) else order
        best_time = np.full(len(pairs), np.inf)
        best_time[trip[head]] = cost[head]
        best_link = np.full(len(pairs), -1, dtype=np.int64)
        best_link[trip[head]] = cand[head]
        reach = np.flatnonzero(np.isfinite(best_time))
        # backtrack all reachable trips together, until the predecessor is the source (a
        # virtual node source, or the origin link, which is not part of the route)
        steps = []
        live, cur = np.arange(len(reach)), best_link[reach]
        if from_links:
            keep = cur != pairs[reach, 0]
            live, cur = live[keep], cur[keep]
        while live.size:
            steps.append((live, cur))
            prev = pred[row[reach[live]], cur]
            more = (prev >= 0) & (prev < n_links)
            if from_links:
                more &= prev != pairs[reach[live], 0]
            live, cur = live[more], prev[more]
        n_steps = np.zeros(len(reach), dtype=np.int64)
        for live, _ in steps:
            n_steps[live] += 1
        path = np.empty((len(reach), len(steps)), dtype=np.int32)
        for k, (live, cur) in enumerate(steps):  # step k found the k-th link from the end
            path[live, n_steps[live] - 1 - k] = cur
        cache = self._link_cache if from_links else self._cache
        for a, b in pairs.tolist():
            cache[(a, b)] = _NO_ROUTE
        for j, t in enumerate(reach.tolist()):
            cache[(int(pairs[t, 0]), int(pairs[t, 1]))] = (
                path[j, : n_steps[j]].copy(),
                float(best_time[t]),
            )


_NO_ROUTE: tuple[np.ndarray, float] = (np.zeros(0, dtype=np.int32), np.inf)


def _route_set(found: list[tuple[np.ndarray, float]]) -> RouteSet:
    """A RouteSet from cached (links, time) entries, one per trip."""
    offsets = np.zeros(len(found) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r, _ in found])
    links = np.concatenate([r for r, _ in found]) if found else _NO_ROUTE[0]
    time_s = np.array([t for _, t in found], dtype=np.float64)
    return RouteSet(offsets, links.astype(np.int32), time_s, np.isfinite(time_s))


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, e)`` for each (s, e) pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift
