"""The clock: recurring processes at their periods, in their order, with sparse events first."""

from __future__ import annotations

import pytest

from twin.clock import Clock, Process


def test_processes_run_at_their_periods_and_in_order_at_shared_instants():
    clock = Clock(start_s=100.0)
    log: list[tuple[float, str]] = []
    # registered in the opposite of their order, with different periods
    clock.register(Process("fast", 1.0, lambda t: log.append((t, "fast")), order=5))
    clock.register(Process("slow", 5.0, lambda t: log.append((t, "slow")), order=1))
    clock.run_until(110.0)
    fast = [t for t, n in log if n == "fast"]
    slow = [t for t, n in log if n == "slow"]
    assert fast == [100.0 + k for k in range(11)]
    assert slow == [100.0, 105.0, 110.0]
    for t in slow:  # at a shared instant the lower order runs first
        i = log.index((t, "slow"))
        assert log[i + 1] == (t, "fast")


def test_sparse_events_take_effect_before_periodic_work_at_the_same_time():
    clock = Clock()
    log: list[str] = []

    def closure():
        yield clock.env.timeout(10.0)
        log.append("closure")

    clock.env.process(closure())
    clock.register(Process("tick", 5.0, lambda t: log.append(f"tick@{t:g}"), order=0))
    clock.run_until(10.0)
    assert log == ["tick@0", "tick@5", "closure", "tick@10"]


def test_offset_and_run_until_includes_the_instant_itself():
    clock = Clock()
    seen: list[float] = []
    clock.register(Process("p", 60.0, seen.append, offset_s=30.0))
    clock.run_until(150.0)
    assert seen == [30.0, 90.0, 150.0]
    assert clock.now_s == 150.0
    clock.run_until(150.0)  # nothing new at the same instant
    assert seen == [30.0, 90.0, 150.0]


def test_plan_lists_processes_by_order_with_calls():
    clock = Clock()
    clock.register(Process("recorder", 900.0, lambda t: None, order=1000))
    clock.register(Process("traffic", 1.0, lambda t: None, order=10))
    clock.run_until(2.0)
    lines = clock.plan().splitlines()
    assert lines[0].split() == ["order", "process", "period", "calls", "wall", "s"]
    assert lines[1].split()[:5] == ["10", "traffic", "1", "s", "3"]
    assert lines[2].split()[:5] == ["1000", "recorder", "900", "s", "1"]


def test_bad_registrations_are_refused():
    clock = Clock()
    clock.register(Process("p", 1.0, lambda t: None))
    with pytest.raises(ValueError, match="already registered"):
        clock.register(Process("p", 2.0, lambda t: None))
    with pytest.raises(ValueError, match="period_s must be > 0"):
        clock.register(Process("q", 0.0, lambda t: None))
