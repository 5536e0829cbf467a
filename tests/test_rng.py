"""Named random streams: same (seed, name), same numbers; independent of other streams."""

from __future__ import annotations

import numpy as np
import pytest

from twin.rng import stream


def test_same_seed_and_name_give_identical_draws():
    a = stream(42, "trips").random(1000)
    b = stream(42, "trips").random(1000)
    assert np.array_equal(a, b)


def test_streams_differ_by_name_and_by_seed():
    base = stream(42, "trips").random(100)
    assert not np.array_equal(base, stream(42, "weather").random(100))
    assert not np.array_equal(base, stream(43, "trips").random(100))


def test_a_stream_does_not_depend_on_other_streams_being_used():
    first = stream(7, "households").integers(0, 1_000_000, 50)
    noisy = stream(7, "trips")
    noisy.random(10_000)  # drawing heavily from another stream changes nothing
    again = stream(7, "households").integers(0, 1_000_000, 50)
    assert np.array_equal(first, again)


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        stream(-1, "x")
