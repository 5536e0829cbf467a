"""Named random streams: every source of randomness draws from its own seeded stream.

A stream is derived from (scenario seed, stream name) only, so adding a new stream, or drawing
more numbers from one, never shifts the numbers another stream produces. A policy and its
baseline therefore see the same households, trips and weather (common random numbers).
"""

from __future__ import annotations

import hashlib

import numpy as np


def stream_key(name: str) -> tuple[int, ...]:
    """A stable integer key for a stream name (independent of Python's hash seed)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def stream(seed: int, name: str) -> np.random.Generator:
    """The random generator for stream `name` under scenario `seed`."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    seq = np.random.SeedSequence(entropy=seed, spawn_key=stream_key(name))
    return np.random.Generator(np.random.PCG64(seq))
