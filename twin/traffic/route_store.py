"""Where routes are kept: :class:`RouteSet` (the routes of many trips, CSR) and
:class:`RouteCache` (routes by integer key, growing CSR arrays with sorted keys, looked up and
gathered without Python work per route)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


class RouteCache:
    """Routes by integer key, stored CSR in arrays that grow by doubling; keys sorted for
    vectorised look-ups. A route is stored once however often it is asked for."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)  # sorted
        self._key_entry = np.zeros(0, dtype=np.int64)  # the entry of each key
        self._start = np.zeros(0, dtype=np.int64)  # entry -> first link in _links
        self._length = np.zeros(0, dtype=np.int64)  # entry -> number of links
        self._time_s = np.zeros(0, dtype=np.float64)  # entry -> route time (inf: no route)
        self._links = np.zeros(0, dtype=np.int32)
        self._n_entries = 0
        self._n_links = 0

    def __len__(self) -> int:
        return self._n_entries

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The entry of each key (int64), -1 where not cached."""
        if not len(self._keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        hit = pos < len(self._keys)
        hit[hit] = self._keys[pos[hit]] == keys[hit]
        return np.where(hit, self._key_entry[np.minimum(pos, len(self._keys) - 1)], -1)

    def add(
        self, keys: np.ndarray, offsets: np.ndarray, links: np.ndarray, time_s: np.ndarray
    ) -> None:
        """Store the routes of ``keys`` (distinct, none cached yet): CSR ``offsets`` into
        ``links``, and their times (s)."""
        n, m = len(keys), len(links)
        e0, l0 = self._n_entries, self._n_links
        self._start = _grown(self._start, e0 + n)
        self._length = _grown(self._length, e0 + n)
        self._time_s = _grown(self._time_s, e0 + n)
        self._links = _grown(self._links, l0 + m)
        self._start[e0 : e0 + n] = l0 + offsets[:-1]
        self._length[e0 : e0 + n] = np.diff(offsets)
        self._time_s[e0 : e0 + n] = time_s
        self._links[l0 : l0 + m] = links
        self._n_entries, self._n_links = e0 + n, l0 + m
        order = np.argsort(keys)
        pos = np.searchsorted(self._keys, keys[order])
        self._keys = np.insert(self._keys, pos, keys[order])
        self._key_entry = np.insert(self._key_entry, pos, e0 + order)

    def gather(self, entries: np.ndarray) -> RouteSet:
        """The routes of ``entries`` (-1: no route, as origin == destination), in order."""
        has = entries >= 0
        safe = np.where(has, entries, 0)
        if not self._n_entries:  # nothing stored: no routes
            start = length = np.zeros(len(entries), dtype=np.int64)
            time_s = np.full(len(entries), np.inf)
        else:
            start = self._start[safe]
            length = np.where(has, self._length[safe], 0)
            time_s = np.where(has, self._time_s[safe], np.inf)
        offsets = np.zeros(len(entries) + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        links = self._links[concat_ranges(start, start + length)]
        return RouteSet(offsets, links, time_s, np.isfinite(time_s))


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` itself if it holds ``size`` items, else a copy at least twice as long."""
    if size <= len(a):
        return a
    out = np.empty(max(size, 2 * len(a), 64), dtype=a.dtype)
    out[: len(a)] = a
    return out


def concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, e)`` for each (s, e) pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift
