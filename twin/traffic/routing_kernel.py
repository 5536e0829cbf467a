"""Turn-aware Dijkstra on the link graph, many origins at once, routes backtracked in the kernel.

The graph is the one :class:`~twin.traffic.routing.Router` describes (a vertex per link, then a
virtual source vertex per node; an edge per open turn movement and per out-link of a node), in
CSR form by source vertex: ``indptr`` (int64), ``head`` (int32 target vertex), ``weight``
(float64 s, > 0). :func:`route_trips` searches from each origin vertex with an indexed 4-ary
min-heap (decrease-key; on Baltimore's link graph a whole search takes half the time it takes
with a binary heap with lazy deletion, and the same answers), stops once every destination of
that origin is decided, and backtracks the routes of all its trips, giving a CSR route set.

Same answers as :func:`scipy.sparse.csgraph.dijkstra`. Distances are sums of the same float64
weights in the same order, so they agree bit for bit. A predecessor is the first vertex,
in the order vertices are settled, that reached the vertex's final distance (a later candidate
must do strictly better to replace it): where one candidate alone reaches that distance, or
the other candidates are farther from the origin (settled later by any Dijkstra), every
Dijkstra agrees on it; where two candidates at *equal* distances reach it, the choice depends
on how the heap orders equal keys, and the kernel marks the vertex *tied*. A trip whose route
passes a tied vertex is flagged (``tied``) for the caller to route with the reference; every
other route is the reference's, link for link.
The destination's in-link is the cheapest, the first in ``node_in_links`` order among equals.

Early exit: a destination is decided once one of its in-links is settled (at distance ``x``)
and the heap's smallest key is above ``x``, since every in-link not yet settled then costs more
than ``x``. The search from an origin stops when all its destinations are decided.

A* for an origin with one destination: the heap's key adds a consistent lower bound of the
time left, the larger of the straight-line distance at the fastest chord speed of any link and
the landmarks' triangle inequalities (ALT, Goldberg & Harrelson 2005: from each of 16
landmarks, t(v, goal) >= t(L, goal) - t(L, v) and >= t(v, L) - t(goal, L), the landmarks'
times computed on link times no larger than the current ones). On Columbus the landmarks cut
the vertices a search touches from ~8,100 to ~2,100 (mean of 200 random pairs at free flow).
The routes stay the reference's: every vertex
whose key is at most the destination's is still settled (the bound is consistent), so every
candidate predecessor of a vertex on the route is seen, and of equal candidates the one nearer
the origin, the one Dijkstra settles first, is kept.

Parallel over origins (``prange``), in batches whose predecessor rows are kept for the
backtracking pass; every origin's work is independent of the others and of the thread that
does it, so the result is the same bit for bit for any number of threads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)

# most bytes of predecessor rows (int32, one per vertex and origin) kept for one batch
PRED_BATCH_BYTES = 1 << 25


class LinkGraph(NamedTuple):
    """The link graph in CSR form by source vertex, and each node's in-links."""

    indptr: np.ndarray  # int64 (n_vertices + 1)
    head: np.ndarray  # int32, an edge's target vertex
    weight: np.ndarray  # float64 s, > 0
    link_node: np.ndarray  # int32 per vertex, the node a link vertex enters (-1: virtual)
    node_in_offsets: np.ndarray  # int64 (n_nodes + 1)
    node_in_links: np.ndarray  # int32
    # for A*: the point a vertex stands for (a link's end node; a source vertex's node, so
    # node n is at vertex n_links + n) in metres divided by the fastest speed on the graph
    # (s), so that the straight-line distance between two is a lower bound of the time
    vertex_x_s: np.ndarray  # float64 per vertex
    vertex_y_s: np.ndarray  # float64 per vertex
    # for A* with landmarks (ALT): each vertex's time from and to each landmark (s, inf where
    # not connected), on weights no larger than ``weight``; (n_vertices, 0) for none
    from_landmark_s: np.ndarray  # float64 (n_vertices, n_landmarks)
    to_landmark_s: np.ndarray  # float64 (n_vertices, n_landmarks)


class Workspace(NamedTuple):
    """One thread's search state, a slot per vertex (``want`` per node)."""

    want: np.ndarray  # int64, stamp of the search that wants the node (-stamp: decided)
    dist: np.ndarray  # float64 s, inf where not reached
    tie: np.ndarray  # bool, reached at its distance by two candidates
    touched: np.ndarray  # int32, the vertices the search changed
    heap_key: np.ndarray  # float64
    heap_vertex: np.ndarray  # int32
    heap_pos: np.ndarray  # int32, a vertex's heap slot, or NOT_REACHED, or SETTLED
    bound_s: np.ndarray  # float64, A*'s bound of the time left from a reached vertex


class TripRoutes(NamedTuple):
    """Per-trip results of the searches, before the routes are backtracked."""

    time_s: np.ndarray  # float64, inf where not reached
    best_link: np.ndarray  # int64, the destination's in-link (-1 none)
    n_steps: np.ndarray  # int64, links in the route
    tied: np.ndarray  # bool, the route passes a tied vertex


@njit(cache=True)
def workspace(n_vertices: int, n_nodes: int) -> Workspace:
    """A reset workspace for one thread."""
    return Workspace(
        np.zeros(n_nodes, dtype=np.int64),
        np.full(n_vertices, np.inf),
        np.zeros(n_vertices, dtype=np.bool_),
        np.empty(n_vertices, dtype=np.int32),
        np.empty(n_vertices),
        np.empty(n_vertices, dtype=np.int32),
        np.full(n_vertices, NOT_REACHED, dtype=np.int32),
        np.empty(n_vertices),
    )


# heap_pos values of a vertex not in the heap
NOT_REACHED = -1
SETTLED = -2


@njit(cache=True, inline="always")
def _sift_up(key, vertex, pos, i, k, v):
    """Put (k, v) at slot ``i`` of the 4-ary min-heap, or above it while its parent's key is
    larger (a push at ``i = size``, or a decrease-key at v's slot)."""
    while i > 0:
        parent = (i - 1) >> 2
        if key[parent] <= k:
            break
        key[i] = key[parent]
        vertex[i] = vertex[parent]
        pos[vertex[i]] = i
        i = parent
    key[i] = k
    vertex[i] = v
    pos[v] = i


@njit(cache=True, inline="always")
def _pop_root(key, vertex, pos, size):
    """Remove the root of the 4-ary min-heap of ``size`` entries (its vertex is marked
    SETTLED); return the new size."""
    pos[vertex[0]] = SETTLED
    size -= 1
    if size == 0:
        return 0
    k = key[size]
    v = vertex[size]
    i = 0
    while True:
        c = 4 * i + 1
        if c + 3 < size:  # four children: their minimum in a tournament without branches
            k0, k1, k2, k3 = key[c], key[c + 1], key[c + 2], key[c + 3]
            m01 = c if k0 <= k1 else c + 1
            m23 = c + 2 if k2 <= k3 else c + 3
            k01, k23 = min(k0, k1), min(k2, k3)
            m = m01 if k01 <= k23 else m23
            mk = min(k01, k23)
        elif c < size:
            m = c
            mk = key[c]
            for q in range(c + 1, size):
                if key[q] < mk:
                    mk = key[q]
                    m = q
        else:
            break
        if mk >= k:
            break
        key[i] = mk
        vertex[i] = vertex[m]
        pos[vertex[i]] = i
        i = m
    key[i] = k
    vertex[i] = v
    pos[v] = i
    return size


@njit(cache=True, inline="always")
def _goal_landmarks(goal: int, g: LinkGraph, n_lm: int):
    """Per landmark, the least time from it to any in-link of node ``goal`` and the most
    time from any of them to it (the bounds' goal terms)."""
    goal_from = np.full(n_lm, np.inf)
    goal_to = np.full(n_lm, -np.inf)
    if n_lm == 0:
        return goal_from, goal_to
    for q in range(g.node_in_offsets[goal], g.node_in_offsets[goal + 1]):
        lk = g.node_in_links[q]
        for k in range(n_lm):
            goal_from[k] = min(goal_from[k], g.from_landmark_s[lk, k])
            goal_to[k] = max(goal_to[k], g.to_landmark_s[lk, k])
    return goal_from, goal_to


@njit(cache=True, inline="always")
def _bound_s(j: int, gx: float, gy: float, goal_from, goal_to, g: LinkGraph) -> float:
    """A lower bound of the time from vertex ``j`` to the goal, consistent: the straight
    line at the fastest speed, and for each landmark L the triangle inequalities
    t(j, goal) >= t(L, goal) - t(L, j) and >= t(j, L) - t(goal, L). A term with an infinite
    time is infinite where the goal cannot be reached from ``j`` and is skipped (NaN) where
    it says nothing."""
    h = np.sqrt((g.vertex_x_s[j] - gx) ** 2 + (g.vertex_y_s[j] - gy) ** 2)
    fr, to = g.from_landmark_s, g.to_landmark_s
    for k in range(len(goal_from)):
        a = goal_from[k] - fr[j, k]
        if a > h:
            h = a
        b = to[j, k] - goal_to[k]
        if b > h:
            h = b
    return h


@njit(parallel=True, cache=True)
def one_to_all_s(sources, indptr, head, weight) -> np.ndarray:
    """Dijkstra from each of ``sources`` to every vertex of a CSR graph (``indptr`` int64,
    ``head`` int32, ``weight`` float64 > 0): the times, one row per source (s, inf where not
    reached), as :func:`scipy.sparse.csgraph.dijkstra` gives them (the landmarks' tables).
    Parallel over the sources."""
    n = len(indptr) - 1
    out = np.full((len(sources), n), np.inf)
    for i in prange(len(sources)):
        dist = out[i]
        key = np.empty(n)
        vertex = np.empty(n, dtype=np.int32)
        pos = np.full(n, NOT_REACHED, dtype=np.int32)
        dist[sources[i]] = 0.0
        _sift_up(key, vertex, pos, 0, 0.0, sources[i])
        size = 1
        while size > 0:
            v = vertex[0]
            size = _pop_root(key, vertex, pos, size)
            dv = dist[v]
            for e in range(indptr[v], indptr[v + 1]):
                j = head[e]
                nd = dv + weight[e]
                if nd < dist[j]:
                    dist[j] = nd
                    slot = pos[j]
                    if slot == NOT_REACHED:
                        _sift_up(key, vertex, pos, size, nd, j)
                        size += 1
                    else:
                        _sift_up(key, vertex, pos, slot, nd, j)
    return out


@njit(cache=True)
def search(src: int, stamp: int, n_want: int, goal: int, g: LinkGraph, ws: Workspace, pred) -> int:
    """Dijkstra from vertex ``src`` until the ``n_want`` nodes with ``ws.want[node] == stamp``
    are decided (each is then marked ``-stamp``); A* towards node ``goal`` where ``goal >= 0``
    (then the only node wanted).

    Writes ``ws.dist`` (s; inf where not reached; final where settled), ``pred`` (valid where
    ``dist`` is finite, but at ``src``), ``ws.tie`` (see the module's docstring) and
    ``ws.heap_pos``. ``dist``, ``tie`` and ``heap_pos`` must come in reset (inf, False,
    NOT_REACHED); the vertices this search changed are ``ws.touched[:n]``, n returned, for the
    caller to reset. Weights are > 0 and the A* bound is consistent, so a settled vertex is
    never improved and never ties again.
    """
    dist, tie, touched = ws.dist, ws.tie, ws.touched
    heap_key, heap_vertex, heap_pos, bound = ws.heap_key, ws.heap_vertex, ws.heap_pos, ws.bound_s
    indptr, head, weight, link_node, want = g.indptr, g.head, g.weight, g.link_node, ws.want
    vx, vy = g.vertex_x_s, g.vertex_y_s
    astar = goal >= 0
    at = len(vx) - (len(g.node_in_offsets) - 1) + goal  # the goal node's source vertex
    gx = vx[at] if astar else 0.0
    gy = vy[at] if astar else 0.0
    n_lm = g.from_landmark_s.shape[1] if astar else 0
    goal_from, goal_to = _goal_landmarks(goal, g, n_lm)
    dist[src] = 0.0
    touched[0] = src
    n_touched = 1
    _sift_up(heap_key, heap_vertex, heap_pos, 0, 0.0, src)
    size = 1
    remaining = n_want
    threshold = 0.0
    while size > 0:
        k = heap_key[0]  # the time so far, plus the bound of the time left under A*
        v = heap_vertex[0]
        if remaining == 0 and k > threshold:
            break
        size = _pop_root(heap_key, heap_vertex, heap_pos, size)
        node = link_node[v]
        if node >= 0 and want[node] == stamp:
            want[node] = -stamp
            remaining -= 1
            threshold = max(threshold, k)  # the bound is 0 at the goal: k is the time
        dv = dist[v]
        for e in range(indptr[v], indptr[v + 1]):
            j = head[e]
            nd = dv + weight[e]
            dj = dist[j]
            if nd < dj:
                dist[j] = nd
                pred[j] = v
                tie[j] = False
                slot = heap_pos[j]
                if slot == NOT_REACHED:
                    touched[n_touched] = j
                    n_touched += 1
                    if astar:  # a vertex's bound, once per search
                        bound[j] = _bound_s(j, gx, gy, goal_from, goal_to, g)
                        nd += bound[j]
                    _sift_up(heap_key, heap_vertex, heap_pos, size, nd, j)
                    size += 1
                else:
                    if astar:
                        nd += bound[j]
                    _sift_up(heap_key, heap_vertex, heap_pos, slot, nd, j)
            elif nd == dj:
                dp = dist[pred[j]]
                if dv < dp:  # A* only: Dijkstra would have settled v first and kept it
                    pred[j] = v
                    tie[j] = False
                elif dv == dp:
                    tie[j] = True  # two candidates at the same distance: the heap would choose
    return n_touched


@njit(cache=True)
def _route_origin(
    i: int, src: int, trip_start, dest, g: LinkGraph, ws: Workspace, pred, out: TripRoutes
) -> None:
    """Search from origin ``i`` (vertex ``src``), then for each of its trips the best in-link
    of the destination, the time, the route's link count and whether it passes a tie; leaves
    the workspace reset."""
    stamp = i + 1
    n_want = 0
    want = ws.want
    for t in range(trip_start[i], trip_start[i + 1]):
        d = dest[t]
        if want[d] != stamp:
            want[d] = stamp
            n_want += 1
    goal = dest[trip_start[i]] if n_want == 1 else -1
    n_touched = search(src, stamp, n_want, goal, g, ws, pred)
    dist, tie = ws.dist, ws.tie
    for t in range(trip_start[i], trip_start[i + 1]):
        d = dest[t]
        best = np.inf
        bl = -1
        for q in range(g.node_in_offsets[d], g.node_in_offsets[d + 1]):
            lk = g.node_in_links[q]
            if dist[lk] < best:  # an in-link not settled costs more than a settled one
                best = dist[lk]
                bl = lk
        out.time_s[t] = best
        out.best_link[t] = bl
        n = 0
        passes_tie = False
        if bl >= 0:
            cur = bl
            while cur != src:
                n += 1
                passes_tie |= tie[cur]
                cur = pred[cur]
        out.n_steps[t] = n
        out.tied[t] = passes_tie
    for q in range(n_touched):
        v = ws.touched[q]
        dist[v] = np.inf
        tie[v] = False
        ws.heap_pos[v] = NOT_REACHED


@njit(parallel=True, nogil=True, cache=True)
def route_trips(sources, trip_start, dest, g: LinkGraph, n_chunks: int):
    """Routes of trips grouped by search: search ``i`` starts at vertex ``sources[i]`` and its
    trips are ``trip_start[i]:trip_start[i + 1]``, ending at nodes ``dest`` (a source may
    start several searches; one with a single destination is an A* search). A route is the
    chain of link vertices after the source up to an in-link of the destination.

    Returns ``(offsets, links, time_s, tied)``: CSR routes in trip order (int64 offsets, int32
    links), the time (s; inf when the destination is not reached, and the route then empty)
    and whether the route passes a tied vertex. ``n_chunks`` (>= 1) splits each batch of
    origins for the threads; it changes nothing in the results.
    """
    n_orig = len(sources)
    n_trips = len(dest)
    n_vertices = len(g.indptr) - 1
    n_nodes = len(g.node_in_offsets) - 1
    out = TripRoutes(
        np.empty(n_trips),
        np.empty(n_trips, dtype=np.int64),
        np.zeros(n_trips, dtype=np.int64),
        np.zeros(n_trips, dtype=np.bool_),
    )
    offsets = np.zeros(n_trips + 1, dtype=np.int64)
    links = np.empty(max(64, 16 * n_trips), dtype=np.int32)
    batch = max(1, min(n_orig, PRED_BATCH_BYTES // (4 * max(1, n_vertices))))
    pred_rows = np.empty((batch, n_vertices), dtype=np.int32)
    for b0 in range(0, n_orig, batch):
        b1 = min(n_orig, b0 + batch)
        nc = max(1, min(n_chunks, b1 - b0))
        for c in prange(nc):
            ws = workspace(n_vertices, n_nodes)
            for i in range(b0 + c, b1, nc):  # interleaved: the chunks get alike mixes
                _route_origin(i, sources[i], trip_start, dest, g, ws, pred_rows[i - b0], out)
        t0, t1 = trip_start[b0], trip_start[b1]
        for t in range(t0, t1):
            offsets[t + 1] = offsets[t] + out.n_steps[t]
        if offsets[t1] > len(links):
            grown = np.empty(max(offsets[t1], 2 * len(links)), dtype=np.int32)
            for q in range(offsets[t0]):
                grown[q] = links[q]
            links = grown
        for r in prange(b1 - b0):
            i = b0 + r
            src = sources[i]
            pred = pred_rows[r]
            for t in range(trip_start[i], trip_start[i + 1]):
                pos = offsets[t + 1]
                cur = out.best_link[t]
                if cur < 0:
                    continue
                while cur != src:
                    pos -= 1
                    links[pos] = cur
                    cur = pred[cur]
    return offsets, links[: offsets[n_trips]].copy(), out.time_s, out.tied
