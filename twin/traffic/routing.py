"""Fastest, turn-aware routes on a compiled :class:`~twin.network.road.RoadNet`.

Routing runs on the *link graph*: one vertex per link and one edge per turn movement
(from-link -> to-link), weighted by the to-link's travel time plus a turn penalty by the
movement's type. Turn bans and U-turns are therefore honoured exactly as compiled. Each network
node also has a virtual source vertex with an edge to each of its out-links, weighted by that
link's time. A route from node ``o`` to node ``d`` is a chain of links whose first link leaves
``o`` and whose last link enters ``d``; its cost is the time from leaving ``o`` to arriving at
``d`` (the sum of link times and turn penalties), the minimum over ``d``'s in-links.

Shortest paths come from :func:`twin.traffic.routing_kernel.route_trips` (Numba, a 4-ary
heap, searches spread over Numba's threads), which backtracks the routes itself: an A* search
per (origin, destination) pair where the origin has at most :data:`ASTAR_MAX_DESTS`
destinations, else one Dijkstra search per origin, stopping once its destinations are decided.
They are the routes :func:`scipy.sparse.csgraph.dijkstra` gives (the reference,
:meth:`Router._route_scipy`), link for link: where two equally fast routes meet at one link
with the same cost so far, the choice depends on the heap, and the kernel hands those few trips
to the reference (see :mod:`twin.traffic.routing_kernel`). Routes are cached per (origin,
destination) pair until the link times or closures change; looking them up and assembling a
:class:`RouteSet` is vectorised (a sorted key array, CSR storage), so a day of trips costs no
Python work per trip.

A trip whose origin equals its destination has no link to drive: it is not routed
(``ok=False``, empty route, infinite time), like an unreachable trip; the caller reports it
(``origins == dests`` tells the two apart).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Sequence

import numba
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from twin.network.road import TURN_LEFT, TURN_RIGHT, TURN_THROUGH, TURN_U, RoadNet
from twin.traffic.route_store import RouteCache, RouteSet, concat_ranges
from twin.traffic.routing_kernel import LinkGraph, one_to_all_s, route_trips

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
#: landmarks of the A* bound (ALT, Goldberg & Harrelson 2005): the farthest link from the
#: network's centre in each of this many equal angle sectors (judgement: 16 is the usual
#: count in the ALT literature)
N_LANDMARKS = 16
#: searches of one routing call from which the landmarks are computed again on the current
#: link times (times that grew since they were computed keep them valid but looser); a
#: refresh costs about what 600 A* searches do on Columbus (0.19 s on one thread, 49,000
#: vertices)
LANDMARK_REFRESH_SEARCHES = 1000
#: an origin with at most this many destinations gets one A* search per destination, one
#: with more a single Dijkstra search until all are decided: on Columbus an A* touches
#: ~1,700-2,400 vertices, a Dijkstra ~10,000-26,000 (measured at free flow and in the
#: afternoon's jam; splitting up to 16 routed re-routing calls 1.7-2.6x faster)
ASTAR_MAX_DESTS = 16
ORIGIN_BATCH = 256  # reference: distinct origins per dijkstra call, ~12 B x batch x vertices
CHUNKS_PER_THREAD = 4  # kernel: pieces of a batch of origins per Numba thread (load balance)


class Router:
    """Fastest routes between network nodes, with link closures and changeable link times.

    ``link_time_s`` (s per link, finite and > 0) defaults to free flow:
    ``link_length_m / link_speed_mps``. ``turn_penalty_s`` (s, indexed by ``TURN_*``)
    defaults to :data:`TURN_PENALTY_S`. The router reads ``net`` and never changes it.

    Routes are cached per (origin, destination) pair; ``cache_hits`` and ``cache_misses``
    count routed trips (origin == destination counts as neither). The cache grows with the
    distinct pairs asked for (a route is ~4 bytes per link) and is dropped by
    :meth:`set_link_times`, :meth:`close_links`, :meth:`open_links` and :meth:`clear_cache`.
    Ties between equally fast routes break the same way on every run, and for any number of
    Numba threads.
    """

    # how routes are computed: "kernel" (Numba), or "scipy" (the reference, for the tests)
    _backend = "kernel"

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
        # the node each link vertex enters (-1: a virtual source vertex), for the kernel
        self._link_node = np.full(n_links + net.n_nodes, -1, dtype=np.int32)
        self._link_node[net.node_in_links] = np.repeat(
            np.arange(net.n_nodes, dtype=np.int32), np.diff(net.node_in_offsets)
        )
        self._closed = np.zeros(n_links, dtype=bool)
        # for A*: the point each vertex stands for (a link's end node, then each node) and
        # each link's straight-line length
        at = np.concatenate([net.link_to, np.arange(net.n_nodes)])
        self._vertex_x_m, self._vertex_y_m = net.node_x_m[at], net.node_y_m[at]
        self._chord_m = np.hypot(
            net.node_x_m[net.link_to] - net.node_x_m[net.link_from],
            net.node_y_m[net.link_to] - net.node_y_m[net.link_from],
        )
        self._link_time_s = np.empty(n_links)
        self._graph: csr_matrix | None = None
        self._csr: LinkGraph | None = None
        # the landmarks' times, and the edge weights and open edges they were computed on
        self._landmark_s: tuple[np.ndarray, np.ndarray] | None = None
        self._landmark_weight = np.zeros(0)
        self._landmark_keep = np.zeros(0, dtype=bool)
        self._landmarks_exact = False  # computed on the times and closures in use
        # the edge weights at free flow, below which the landmarks are not computed unless
        # exact (the traffic loop's routing times never fall below free flow)
        self._free_weight = self._edges(net.link_length_m / net.link_speed_mps)[0]
        self._cache = RouteCache()  # key origin node * n_nodes + destination node
        self._link_cache = RouteCache()  # key origin link * n_nodes + destination node
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
        """Use these link times (s; e.g. current congested ones) from now on; clears the
        cache unless they are the times in use."""
        t = np.asarray(link_time_s, dtype=np.float64)
        if t.shape != (self.net.n_links,):
            raise ValueError(f"link_time_s must have shape ({self.net.n_links},), got {t.shape}")
        if not np.all(np.isfinite(t) & (t > 0)):
            raise ValueError("link_time_s must be finite and > 0 (close a link to forbid it)")
        if self._csr is not None and np.array_equal(t, self._link_time_s):
            return  # the same times: the graph and the cached routes still hold
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
        self._csr = None
        self._cache.clear()
        self._link_cache.clear()

    def _edges(self, link_time_s: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every edge's weight (s; on ``link_time_s``, default the times in use) and whether
        it is open (neither end a closed link)."""
        net = self.net
        turn_s = self._turn_penalty_s[net.mov_turn]
        times = self._link_time_s if link_time_s is None else link_time_s
        weight = times[self._to] + np.concatenate([turn_s, np.zeros(len(net.node_out_links))])
        keep = ~self._closed[self._to]
        keep[: net.n_movements] &= ~self._closed[net.mov_from_link]
        return weight, keep

    def _link_graph(self) -> csr_matrix:
        """The open link graph for :func:`scipy.sparse.csgraph.dijkstra` (the reference)."""
        if self._graph is None:
            self._graph = self._scipy_graph(*self._edges())
        return self._graph

    def _scipy_graph(self, weight: np.ndarray, keep: np.ndarray) -> csr_matrix:
        """The link graph of the open edges ``keep`` with weights ``weight`` for scipy."""
        n = self.net.n_links + self.net.n_nodes
        # weights are > 0, so no edge is an explicit zero that csgraph would drop
        return csr_matrix((weight[keep], (self._src[keep], self._to[keep])), shape=(n, n))

    def kernel_graph(self, *, exact_landmarks: bool = False) -> LinkGraph:
        """The open link graph as the kernel takes it: CSR arrays with the edges in the
        reference's order (``_src`` is sorted), the nodes' in-links, and the landmarks'
        times (computed on the times in use with ``exact_landmarks``, else possibly on
        earlier, lower ones)."""
        if self._csr is not None and exact_landmarks and not self._landmarks_exact:
            self._csr = None
        if self._csr is None:
            net = self.net
            n = net.n_links + net.n_nodes
            weight, keep = self._edges()
            # A*'s bound: straight-line metres at the fastest chord speed of any link, a
            # little slower still, so that rounding never makes the bound inconsistent
            fast = self._chord_m > 0
            slowness = (1.0 - 1e-6) * float(
                (self._link_time_s[fast] / self._chord_m[fast]).min() if fast.any() else 0.0
            )
            from_s, to_s = self._landmarks(weight, keep, exact_landmarks)
            self._csr = LinkGraph(
                _indptr(self._src[keep], n),
                self._to[keep].astype(np.int32, copy=False),
                weight[keep].astype(np.float64, copy=False),
                self._link_node,
                net.node_in_offsets.astype(np.int64, copy=False),
                net.node_in_links.astype(np.int32, copy=False),
                self._vertex_x_m * slowness,
                self._vertex_y_m * slowness,
                from_s,
                to_s,
            )
        return self._csr

    def _landmarks(
        self, weight: np.ndarray, keep: np.ndarray, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each vertex's times from and to the landmarks (s, a little less, so that rounding
        never makes the bound inconsistent), shape (n_vertices, N_LANDMARKS). Computed again
        when ``exact`` and they were computed on other weights, or when an edge is now
        cheaper, or open where it was closed, than when they were computed: on a graph whose
        edges only got dearer they still bound every route."""
        known = self._landmark_s is not None
        same = (
            known
            and np.array_equal(keep, self._landmark_keep)
            and np.array_equal(weight, self._landmark_weight)
        )
        valid = (
            known
            and not (keep & ~self._landmark_keep).any()
            and bool((weight[keep] >= self._landmark_weight[keep]).all())
        )
        self._landmarks_exact = same
        if not valid or (exact and not same):
            # exact: on these weights; else on the lower of these and free flow's, so that
            # they stay valid while no edge gets faster than free flow (the loop's times)
            base = weight if exact else np.minimum(weight, self._free_weight)
            marks = self._landmark_vertices()
            shrink = 1.0 - 1e-6
            n = self.net.n_links + self.net.n_nodes
            src, to, w = self._src[keep], self._to[keep], base[keep]  # CSR order: src sorted
            back = np.argsort(to, kind="stable")  # the reversed graph, CSR by target
            from_s = one_to_all_s(marks, _indptr(src, n), to, w)
            to_s = one_to_all_s(marks, _indptr(to, n), src[back].astype(np.int32), w[back])
            self._landmark_s = (
                np.ascontiguousarray(from_s.T * shrink),
                np.ascontiguousarray(to_s.T * shrink),
            )
            self._landmark_weight, self._landmark_keep = base.copy(), keep.copy()
            self._landmarks_exact = bool(np.array_equal(base, weight))
        return self._landmark_s

    def _landmark_vertices(self) -> np.ndarray:
        """The open link farthest from the network's centre in each of N_LANDMARKS equal
        angle sectors around it (sectors without a link have none)."""
        links = np.flatnonzero(~self._closed)
        if len(links) == 0:
            return np.zeros(0, dtype=np.int64)
        x, y = self._vertex_x_m[links], self._vertex_y_m[links]
        dx, dy = x - x.mean(), y - y.mean()
        sector = np.minimum(
            ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * N_LANDMARKS).astype(np.int64),
            N_LANDMARKS - 1,
        )
        order = np.lexsort((-np.hypot(dx, dy), sector))  # by sector, farthest first
        first = order[np.r_[True, sector[order][1:] != sector[order][:-1]]]
        return links[first]

    def frozen_copy(self) -> Router:
        """A router with this one's link times, closures, graphs and landmarks (those built
        so far; later ones each builds for itself), that later changes to either never reach
        (for routing in another thread); its cache starts empty."""
        twin_router = copy.copy(self)
        twin_router._link_time_s = self._link_time_s.copy()
        twin_router._closed = self._closed.copy()
        twin_router._cache, twin_router._link_cache = RouteCache(), RouteCache()
        twin_router.cache_hits = twin_router.cache_misses = 0
        return twin_router

    def surely_routable(self, origins: np.ndarray, dests: np.ndarray) -> np.ndarray:
        """True for each trip (node indices) known to have a route without searching: origin
        and destination differ, and the origin has an out-link and the destination an
        in-link in the largest strongly connected part of the open link graph. False says
        nothing (route to find out)."""
        net = self.net
        n_links = net.n_links
        _, keep = self._edges()
        keep[net.n_movements :] = False  # link vertices only
        graph = csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.int8), (self._src[keep], self._to[keep])),
            shape=(n_links, n_links),
        )
        _, label = connected_components(graph, directed=True, connection="strong")
        open_link = ~self._closed
        big = label == np.bincount(label[open_link]).argmax() if open_link.any() else open_link
        big &= open_link

        def any_in(offsets: np.ndarray, links: np.ndarray) -> np.ndarray:
            hits = np.concatenate([[0], np.cumsum(big[links])])
            return hits[offsets[1:]] > hits[offsets[:-1]]

        o, d = np.asarray(origins), np.asarray(dests)
        out_ok = any_in(net.node_out_offsets, net.node_out_links)
        in_ok = any_in(net.node_in_offsets, net.node_in_links)
        return (o != d) & out_ok[o] & in_ok[d]

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
        n_nodes = self.net.n_nodes
        if o.size and (min(o.min(), d.min()) < 0 or max(o.max(), d.max()) >= n_nodes):
            raise ValueError(f"node index out of range 0..{n_nodes - 1}")
        routed = o != d
        entries = np.full(len(o), -1, dtype=np.int64)
        found, n_missing = self._lookup(self._cache, o[routed] * n_nodes + d[routed])
        entries[routed] = found
        self.cache_hits += len(found) - n_missing
        self.cache_misses += n_missing
        return self._cache.gather(entries)

    def routes_from_links(self, links: Sequence[int], dests: Sequence[int]) -> RouteSet:
        """Fastest continuations for vehicles on ``links`` (link indices) to ``dests`` (node
        indices): the links after the current one (empty when the current link ends at the
        destination). The cost counts the turn off the current link, as every later turn."""
        lk = np.asarray(links, dtype=np.int64).ravel()
        d = np.asarray(dests, dtype=np.int64).ravel()
        if lk.shape != d.shape:
            raise ValueError(f"{len(lk)} links but {len(d)} destinations")
        self._link_indices(lk)
        if d.size and (d.min() < 0 or d.max() >= self.net.n_nodes):
            raise ValueError(f"node index out of range 0..{self.net.n_nodes - 1}")
        found, _ = self._lookup(self._link_cache, lk * self.net.n_nodes + d)
        return self._link_cache.gather(found)

    def _lookup(self, cache: RouteCache, keys: np.ndarray) -> tuple[np.ndarray, int]:
        """The entries of ``keys`` in ``cache`` (one of the router's two), routing the
        distinct keys not cached yet, and how many those were."""
        from_links = cache is self._link_cache
        uniq, inverse = np.unique(keys, return_inverse=True)
        missing = uniq[cache.find(uniq) < 0]
        if len(missing):
            n_nodes = self.net.n_nodes
            pairs = np.column_stack([missing // n_nodes, missing % n_nodes])
            if self._backend == "scipy":
                self._route_scipy(cache, pairs, from_links)
            else:
                self._route_kernel(cache, pairs, from_links)
        return cache.find(uniq)[inverse.ravel()], len(missing)

    def _route_kernel(self, cache: RouteCache, pairs: np.ndarray, from_links: bool) -> None:
        """Route (origin, dest) pairs (distinct; origins are nodes, or links with
        ``from_links``) with the kernel into ``cache``; the reference takes the tied ones."""
        net = self.net
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
        _, first, count = np.unique(pairs[:, 0], return_index=True, return_counts=True)
        # a search per pair where its origin has few destinations (A*), else one per origin
        starts = np.union1d(first, np.flatnonzero(np.repeat(count <= ASTAR_MAX_DESTS, count)))
        sources = pairs[starts, 0]
        offsets, links, time_s, tied = route_trips(
            sources if from_links else net.n_links + sources,
            np.append(starts, len(pairs)).astype(np.int64),
            np.ascontiguousarray(pairs[:, 1]),
            self.kernel_graph(exact_landmarks=len(starts) >= LANDMARK_REFRESH_SEARCHES),
            CHUNKS_PER_THREAD * numba.get_num_threads(),
        )
        keys = pairs[:, 0] * net.n_nodes + pairs[:, 1]
        if not tied.any():
            cache.add(keys, offsets, links, time_s)
            return
        # the heap's choice between equal candidates: those trips go to the reference
        keep = ~tied
        starts, ends = offsets[:-1][keep], offsets[1:][keep]
        kept_offsets = np.zeros(len(starts) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=kept_offsets[1:])
        cache.add(keys[keep], kept_offsets, links[concat_ranges(starts, ends)], time_s[keep])
        self._route_scipy(cache, pairs[tied], from_links)

    def _route_scipy(self, cache: RouteCache, pairs: np.ndarray, from_links: bool) -> None:
        """:meth:`_route_kernel` by :func:`scipy.sparse.csgraph.dijkstra` (the reference),
        batch by batch of distinct origins."""
        order = np.argsort(pairs[:, 0], kind="stable")
        pairs = pairs[order]
        uniq, first = np.unique(pairs[:, 0], return_index=True)
        bounds = np.append(first, len(pairs))
        for b in range(0, len(uniq), ORIGIN_BATCH):
            batch = pairs[bounds[b] : bounds[min(b + ORIGIN_BATCH, len(uniq))]]
            offsets, links, time_s = self._solve_batch(
                uniq[b : b + ORIGIN_BATCH], batch, from_links
            )
            cache.add(batch[:, 0] * self.net.n_nodes + batch[:, 1], offsets, links, time_s)

    def _solve_batch(
        self, origins: np.ndarray, pairs: np.ndarray, from_links: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One dijkstra call from the virtual sources of ``origins`` (sorted, distinct), or
        from the origin links themselves: the routes of ``pairs`` (CSR offsets and links) and
        their times (s, inf when not reachable)."""
        net, n_links = self.net, self.net.n_links
        sources = origins if from_links else n_links + origins
        dist, pred = dijkstra(
            self._link_graph(), directed=True, indices=sources, return_predecessors=True
        )
        row = np.searchsorted(origins, pairs[:, 0])
        # each trip's best in-link of its destination: first of its group sorted by (trip, cost)
        starts, ends = net.node_in_offsets[pairs[:, 1]], net.node_in_offsets[pairs[:, 1] + 1]
        trip = np.repeat(np.arange(len(pairs)), ends - starts)
        cand = net.node_in_links[concat_ranges(starts, ends)].astype(np.int64)
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
        lengths = np.zeros(len(pairs), dtype=np.int64)
        lengths[reach] = n_steps
        offsets = np.zeros(len(pairs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # rows in trip order, each its first n_steps links: the routes, CSR
        links = path[np.arange(len(steps)) < n_steps[:, None]]
        return offsets, links, best_time


def _indptr(sources: np.ndarray, n: int) -> np.ndarray:
    """CSR row pointers (int64) of edges sorted by source vertex, over ``n`` vertices."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=n), out=indptr[1:])
    return indptr
