"""The one clock: recurring component processes on a simpy.Environment, in a printable plan.

Each component registers a :class:`Process` (a name, a period, an order and a function of the
simulated time). Every process is one simpy process that wakes at its period; when several wake
at the same instant they run in ascending ``order`` (ties in simpy's event sequence, the same
on every run), because each
wake-up is scheduled with priority ``FIRST_PRIORITY + order`` on simpy's (time, priority,
sequence) event heap. Sparse happenings (a road closure, a policy decision) are ordinary simpy
events at simpy's normal priority, so they take effect before the periodic work at that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import simpy
from simpy.events import Event

FIRST_PRIORITY = 2  # simpy uses 0 (urgent) and 1 (normal) for its own events


@dataclass
class Process:
    """A recurring piece of work on the clock."""

    name: str
    period_s: float
    fn: Callable[[float], None]
    order: int = 500
    offset_s: float = 0.0  # first run this long after registration
    calls: int = 0
    wall_s: float = 0.0  # measured wall time spent in fn


class _Wake(Event):
    """A timeout with an explicit heap priority (simpy's Timeout fixes it to NORMAL)."""

    def __init__(self, env: simpy.Environment, delay_s: float, priority: int) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, priority, delay_s)


class Clock:
    """A simpy Environment plus the registry of recurring processes that run on it."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.env = simpy.Environment(initial_time=start_s)
        self.start_s = start_s
        self.processes: list[Process] = []

    @property
    def now_s(self) -> float:
        return float(self.env.now)

    def register(self, process: Process) -> Process:
        """Start a recurring process; names must be unique."""
        if process.period_s <= 0:
            raise ValueError(f"process {process.name!r}: period_s must be > 0")
        if any(p.name == process.name for p in self.processes):
            raise ValueError(f"process {process.name!r} is already registered")
        self.processes.append(process)
        self.env.process(self._loop(process))
        return process

    def _loop(self, process: Process):
        priority = FIRST_PRIORITY + process.order
        due = self.env.now + process.offset_s
        while True:
            yield _Wake(self.env, due - self.env.now, priority)
            t0 = time.perf_counter()
            process.fn(float(self.env.now))
            process.wall_s += time.perf_counter() - t0
            process.calls += 1
            due += process.period_s

    def run_until(self, t_s: float) -> None:
        """Advance to ``t_s`` and run everything due at ``t_s`` itself."""
        if t_s > self.env.now:
            self.env.run(until=t_s)
        while self.env.peek() <= t_s:
            self.env.step()

    def plan(self) -> str:
        """The processes in the order they run at a shared instant, with period and cost."""
        rows = [("order", "process", "period", "calls", "wall s")]
        for p in sorted(self.processes, key=lambda p: p.order):
            rows.append(
                (str(p.order), p.name, f"{p.period_s:g} s", str(p.calls), f"{p.wall_s:.3f}")
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )
