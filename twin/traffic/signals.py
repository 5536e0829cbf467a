"""Fixed-time signal plans for every signalised intersection, and the kernel that runs them.

Each intersection cycles through its phases (see RoadNet: approaches grouped by axis), each
phase green, then yellow, then all-red. The default plan is Webster's (1958): cycle
``C0 = (1.5 L + 5) / (1 - Y)`` with lost time ``L`` (yellow + all-red per phase) and ``Y`` the
sum of the phases' critical flow ratios ``y = q / s``; effective green is split in proportion
to ``y``. With no demand known, ``y`` of a phase is taken proportional to the capacity of its
heaviest approach over the lanes the phase serves (a protected-left phase: its left-turn
lanes), scaled so that ``Y = DESIGN_Y``; with approach flows (e.g. from the planned
routes) the real ratios are used. Offsets are drawn from a named random stream, so two runs of
one scenario see the same plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

import twin._jitcache  # noqa: F401  (Numba cache locator; before any @njit runs)
from twin.network.road import RoadNet
from twin.traffic.kernel_math import NO_REFCOUNT
from twin.traffic.route_store import concat_ranges
from twin.traffic.state import GREEN, RED, YELLOW

YELLOW_S = 3.0  # s, ITE: 3-6 s for 30-60 km/h approaches; SUMO's netconvert default is 3-4 s
ALL_RED_S = 2.0  # s, red clearance (ITE practice 1-2 s)
MIN_GREEN_S = 7.0  # s, minimum green (MUTCD / HCM practice for minor movements)
MAX_GREEN_S = 60.0  # s, maximum green of a policy-held phase (actuated practice: 30-60 s)
CYCLE_MIN_S, CYCLE_MAX_S = 40.0, 120.0  # s, Webster cycle kept within usual urban limits
DESIGN_Y = 0.7  # sum of critical flow ratios assumed when no demand is known (judgement)
SATURATION_VPH_PER_LANE = 1900.0  # HCM 2010 base saturation flow
MAX_Y = 0.9  # Webster's formula diverges as Y -> 1; demand above this is capped


class SignalArrays(NamedTuple):
    """The signal state as the kernels read it (see :class:`SignalPlans`)."""

    phase_offsets: np.ndarray  # int64 (n_signals + 1), CSR into phases
    phase_mov_offsets: np.ndarray  # int64 (n_phases + 1)
    phase_movs: np.ndarray  # int32
    green_s: np.ndarray  # float64 per phase (fixed-time)
    yellow_s: float
    all_red_s: float
    min_green_s: float
    max_green_s: float
    phase: np.ndarray  # int32 per signal, current phase (index within the signal)
    stage: np.ndarray  # int8 per signal: 0 green, 1 yellow, 2 all-red
    left_s: np.ndarray  # float64 per signal, time left in the stage (fixed-time and changes)
    elapsed_s: np.ndarray  # float64 per signal, time since the stage began
    next_phase: np.ndarray  # int32 per signal, the phase after the current yellow / all-red
    controlled: np.ndarray  # bool per signal: a policy chooses the phases
    request: np.ndarray  # int32 per signal, the phase the policy asked for (-1: keep)
    shown: np.ndarray  # int32 per signal: phase * 3 + stage last written to the movements


@dataclass
class SignalPlans:
    """Fixed-time plans (per phase green; per signal cycle and offset), the live state, and
    the policy-control state.

    A signal with ``controlled[s]`` set runs its phases as its policy's ``request[s]`` says,
    within the engine's safety rules: a green lasts at least ``min_green_s``; a change goes
    through yellow and all-red; a green held for ``max_green_s`` ends (the next phase in
    order follows). Other signals run their fixed-time cycle."""

    phase_offsets: np.ndarray
    phase_mov_offsets: np.ndarray
    phase_movs: np.ndarray
    green_s: np.ndarray
    yellow_s: float
    all_red_s: float
    cycle_s: np.ndarray  # float64 per signal
    offset_s: np.ndarray  # float64 per signal
    phase: np.ndarray
    stage: np.ndarray
    left_s: np.ndarray
    min_green_s: float = MIN_GREEN_S
    max_green_s: float = MAX_GREEN_S
    elapsed_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    next_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    controlled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    request: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    shown: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self) -> None:
        n = len(self.cycle_s)
        if len(self.elapsed_s) != n:
            self.elapsed_s = np.zeros(n)
        if len(self.next_phase) != n:
            self.next_phase = self.phase.astype(np.int32).copy()
        if len(self.controlled) != n:
            self.controlled = np.zeros(n, dtype=bool)
        if len(self.request) != n:
            self.request = np.full(n, -1, dtype=np.int32)
        if len(self.shown) != n:
            self.shown = np.full(n, -1, dtype=np.int32)

    @property
    def n_signals(self) -> int:
        return len(self.cycle_s)

    def n_phases(self) -> np.ndarray:
        """Phases of each signal (int64)."""
        return np.diff(self.phase_offsets)

    def take_control(self, signals: np.ndarray | None = None) -> None:
        """Hand ``signals`` (default: all with more than one phase) to a policy, from now."""
        multi = self.n_phases() > 1
        chosen = multi if signals is None else np.isin(np.arange(self.n_signals), signals) & multi
        self.controlled[chosen] = True
        self.request[chosen] = -1

    def release_control(self, signals: np.ndarray | None = None) -> None:
        """Give ``signals`` (default: all) back to their fixed plans, from now: a held green
        runs out what is left of its planned green."""
        chosen = np.ones(self.n_signals, dtype=bool) if signals is None else np.isin(
            np.arange(self.n_signals), signals)  # fmt: skip
        chosen &= self.controlled
        for s in np.flatnonzero(chosen & (self.stage == 0)).tolist():
            green = self.green_s[self.phase_offsets[s] + self.phase[s]]
            self.left_s[s] = max(green - self.elapsed_s[s], 0.0)
        self.controlled[chosen] = False
        self.request[chosen] = -1

    def arrays(self) -> SignalArrays:
        """The kernel's view of the plans (shares the state arrays)."""
        return SignalArrays(
            self.phase_offsets,
            self.phase_mov_offsets,
            self.phase_movs,
            self.green_s,
            float(self.yellow_s),
            float(self.all_red_s),
            float(self.min_green_s),
            float(self.max_green_s),
            self.phase,
            self.stage,
            self.left_s,
            self.elapsed_s,
            self.next_phase,
            self.controlled,
            self.request,
            self.shown,
        )


def webster_plans(
    net: RoadNet, rng: np.random.Generator, *, approach_flow_vph: np.ndarray | None = None
) -> SignalPlans:
    """Webster fixed-time plans for every signal of ``net`` (see the module docstring)."""
    n_sig = net.n_signals
    first, stop = net.signal_phase_offsets[:-1], net.signal_phase_offsets[1:]
    n_ph = stop - first
    y = phase_ratios(net, approach_flow_vph)  # per phase
    total = np.add.reduceat(y, first) if n_sig else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):  # a signal without demand: all 0
        if approach_flow_vph is None:
            y = DESIGN_Y * y / np.repeat(total, n_ph)
        else:
            over = np.repeat(total > MAX_Y, n_ph)
            y = np.where(over, MAX_Y * y / np.repeat(total, n_ph), y)
    y = np.maximum(y, 1e-3)
    y_sum = np.add.reduceat(y, first) if n_sig else np.zeros(0)
    lost = n_ph * (YELLOW_S + ALL_RED_S)
    c0 = np.clip((1.5 * lost + 5.0) / (1.0 - y_sum), CYCLE_MIN_S, CYCLE_MAX_S)
    per_phase = np.repeat(np.arange(n_sig), n_ph)
    green = np.round(np.maximum((c0 - lost)[per_phase] * y / y_sum[per_phase], MIN_GREEN_S))
    cycle = (np.add.reduceat(green, first) if n_sig else np.zeros(0)) + lost
    one = n_ph == 1  # one approach axis: permanent green
    green[first[one]] = np.inf
    cycle[one] = np.inf
    offsets = np.where(
        np.isfinite(cycle), rng.random(n_sig) * np.where(np.isfinite(cycle), cycle, 0.0), 0.0
    )
    plans = SignalPlans(
        phase_offsets=net.signal_phase_offsets.astype(np.int64),
        phase_mov_offsets=net.phase_mov_offsets.astype(np.int64),
        phase_movs=net.phase_movs.astype(np.int32),
        green_s=green,
        yellow_s=YELLOW_S,
        all_red_s=ALL_RED_S,
        cycle_s=cycle,
        offset_s=offsets,
        phase=np.zeros(n_sig, dtype=np.int32),
        stage=np.zeros(n_sig, dtype=np.int8),
        left_s=green[net.signal_phase_offsets[:-1]].copy() if n_sig else np.zeros(0),
    )
    sig = plans.arrays()
    for s in range(n_sig):  # start each signal `offset` seconds into its cycle
        _advance(sig, s, plans.offset_s[s])
    if n_sig:  # time already spent in the stage the offset put each signal in
        stage_s = np.choose(
            plans.stage, [green[plans.phase_offsets[:-1] + plans.phase], YELLOW_S, ALL_RED_S]
        )
        finite = np.isfinite(stage_s) & np.isfinite(plans.left_s)
        plans.elapsed_s[finite] = stage_s[finite] - plans.left_s[finite]
    return plans


def phase_ratios(net: RoadNet, approach_flow_vph: np.ndarray | None) -> np.ndarray:
    """Per phase, what Webster's split weighs it by: with flows, the largest flow over
    saturation flow of its approaches; without, the largest capacity (veh/h) of one
    approach over the lanes its movements in the phase use (a protected-left phase counts
    only its left-turn lanes)."""
    movs = net.phase_movs
    phase = np.repeat(np.arange(net.n_phases), np.diff(net.phase_mov_offsets))
    link = net.mov_from_link[movs].astype(np.int64)
    out = np.zeros(net.n_phases)
    if approach_flow_vph is not None:
        ratio = approach_flow_vph[link] / (SATURATION_VPH_PER_LANE * net.link_lanes[link])
        out[:] = -np.inf
        np.maximum.at(out, phase, ratio)
        return out
    lo, hi = net.mov_lane_first[movs], net.mov_lane_last[movs] + 1
    per_lane = np.repeat(np.arange(len(movs)), hi - lo)
    lane = concat_ranges(lo, hi)
    # the distinct (phase, link, lane) the movements use, as one key; then lanes per
    # (phase, link)
    n_keys = int(lane.max()) + 1 if len(lane) else 1
    key = (phase[per_lane] * net.n_links + link[per_lane]) * n_keys + lane
    approach, n_lanes = np.unique(np.unique(key) // n_keys, return_counts=True)
    ap_link = approach % net.n_links
    cap = net.link_capacity_vph[ap_link] / net.link_lanes[ap_link] * n_lanes
    np.maximum.at(out, approach // net.n_links, cap)
    return out


@njit(**NO_REFCOUNT)
def _advance(sig: SignalArrays, s: int, dt_s: float) -> None:
    """Advance signal ``s`` by ``dt_s`` through its green / yellow / all-red stages."""
    first = sig.phase_offsets[s]
    n_ph = sig.phase_offsets[s + 1] - first
    sig.elapsed_s[s] += dt_s
    if sig.controlled[s] and sig.stage[s] == 0:
        want = sig.request[s]
        if want < 0 or want >= n_ph:
            want = sig.phase[s]
        target = -1
        if want != sig.phase[s] and sig.elapsed_s[s] >= sig.min_green_s - 1e-9:
            target = want
        elif sig.elapsed_s[s] >= sig.max_green_s - 1e-9:
            target = (sig.phase[s] + 1) % n_ph  # max-out: the next phase in order
        if target >= 0:
            sig.next_phase[s] = target
            sig.stage[s] = 1
            sig.left_s[s] = sig.yellow_s
            sig.elapsed_s[s] = 0.0
        return
    sig.left_s[s] -= dt_s
    while sig.left_s[s] <= 1e-9:
        sig.elapsed_s[s] = 0.0
        if sig.stage[s] == 0:
            sig.stage[s] = 1
            sig.next_phase[s] = (sig.phase[s] + 1) % n_ph
            sig.left_s[s] += sig.yellow_s
        elif sig.stage[s] == 1:
            sig.stage[s] = 2
            sig.left_s[s] += sig.all_red_s
        else:
            sig.stage[s] = 0
            sig.phase[s] = sig.next_phase[s]
            if sig.controlled[s]:
                sig.left_s[s] = np.inf
                break
            sig.left_s[s] += sig.green_s[first + sig.phase[s]]


@njit(**NO_REFCOUNT)
def update_signals(sig: SignalArrays, mov_state: np.ndarray, dt_s: float) -> None:
    """Advance every signal by ``dt_s`` and write its movements' RED / YELLOW / GREEN (only
    where the phase or stage differs from what was last written; all of them when ``dt_s`` is
    0)."""
    for s in range(sig.phase.shape[0]):
        first, last = sig.phase_offsets[s], sig.phase_offsets[s + 1]
        if last - first > 1:
            _advance(sig, s, dt_s)
        code = sig.phase[s] * 3 + sig.stage[s]
        if code == sig.shown[s] and dt_s > 0.0:
            continue
        sig.shown[s] = code
        for q in range(first, last):
            state = RED
            if q - first == sig.phase[s]:
                state = GREEN if sig.stage[s] == 0 else (YELLOW if sig.stage[s] == 1 else RED)
            for i in range(sig.phase_mov_offsets[q], sig.phase_mov_offsets[q + 1]):
                mov_state[sig.phase_movs[i]] = state


def run_signals(plans: SignalPlans, mov_state: np.ndarray, dt_s: float) -> None:
    """Advance all plans by ``dt_s`` (0 just writes the current states)."""
    update_signals(plans.arrays(), mov_state, dt_s)
