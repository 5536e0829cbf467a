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

from dataclasses import dataclass

import numpy as np
from numba import njit

from twin.network.road import RoadNet
from twin.traffic.state import GREEN, RED, YELLOW

YELLOW_S = 3.0  # s, ITE: 3-6 s for 30-60 km/h approaches; SUMO's netconvert default is 3-4 s
ALL_RED_S = 2.0  # s, red clearance (ITE practice 1-2 s)
MIN_GREEN_S = 7.0  # s, minimum green (MUTCD / HCM practice for minor movements)
CYCLE_MIN_S, CYCLE_MAX_S = 40.0, 120.0  # s, Webster cycle kept within usual urban limits
DESIGN_Y = 0.7  # sum of critical flow ratios assumed when no demand is known (judgement)
SATURATION_VPH_PER_LANE = 1900.0  # HCM 2010 base saturation flow
MAX_Y = 0.9  # Webster's formula diverges as Y -> 1; demand above this is capped


@dataclass
class SignalPlans:
    """Fixed-time plans: per phase green; per signal cycle and offset; and the live state."""

    phase_offsets: np.ndarray  # int64 (n_signals + 1), CSR into phases
    phase_mov_offsets: np.ndarray  # int64 (n_phases + 1)
    phase_movs: np.ndarray  # int32
    green_s: np.ndarray  # float64 per phase
    yellow_s: float
    all_red_s: float
    cycle_s: np.ndarray  # float64 per signal
    offset_s: np.ndarray  # float64 per signal
    phase: np.ndarray  # int32 per signal, current phase (index within the signal)
    stage: np.ndarray  # int8 per signal: 0 green, 1 yellow, 2 all-red
    left_s: np.ndarray  # float64 per signal, time left in the stage

    @property
    def n_signals(self) -> int:
        return len(self.cycle_s)

    def kernel_args(self) -> tuple:
        """The arrays :func:`update_signals` takes before ``mov_state``, in its order."""
        return (
            self.phase_offsets,
            self.phase_mov_offsets,
            self.phase_movs,
            self.green_s,
            self.yellow_s,
            self.all_red_s,
            self.phase,
            self.stage,
            self.left_s,
        )


def webster_plans(
    net: RoadNet, rng: np.random.Generator, *, approach_flow_vph: np.ndarray | None = None
) -> SignalPlans:
    """Webster fixed-time plans for every signal of ``net`` (see the module docstring)."""
    n_sig = net.n_signals
    green = np.zeros(net.n_phases)
    cycle = np.zeros(n_sig)
    for s in range(n_sig):
        phases = range(net.signal_phase_offsets[s], net.signal_phase_offsets[s + 1])
        ratios = []
        for ph in phases:
            movs = net.phase_movs[net.phase_mov_offsets[ph] : net.phase_mov_offsets[ph + 1]]
            links = np.unique(net.mov_from_link[movs])
            sat = SATURATION_VPH_PER_LANE * net.link_lanes[links]
            if approach_flow_vph is None:
                ratios.append(phase_capacity_vph(net, movs))
            else:
                ratios.append(float((approach_flow_vph[links] / sat).max()))
        y = np.asarray(ratios)
        if approach_flow_vph is None:
            y = DESIGN_Y * y / y.sum()
        elif y.sum() > MAX_Y:
            y = MAX_Y * y / y.sum()
        y = np.maximum(y, 1e-3)
        if len(y) == 1:  # one approach axis: permanent green
            green[phases.start] = np.inf
            cycle[s] = np.inf
            continue
        lost = len(y) * (YELLOW_S + ALL_RED_S)
        c0 = np.clip((1.5 * lost + 5.0) / (1.0 - y.sum()), CYCLE_MIN_S, CYCLE_MAX_S)
        g = np.maximum((c0 - lost) * y / y.sum(), MIN_GREEN_S)
        green[phases.start : phases.stop] = np.round(g)
        cycle[s] = np.round(g).sum() + lost
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
    for s in range(n_sig):  # start each signal `offset` seconds into its cycle
        _advance(
            plans.phase_offsets,
            plans.green_s,
            plans.yellow_s,
            plans.all_red_s,
            plans.phase,
            plans.stage,
            plans.left_s,
            s,
            plans.offset_s[s],
        )
    return plans


def phase_capacity_vph(net: RoadNet, movs: np.ndarray) -> float:
    """The largest capacity of one approach over the lanes its movements in a phase use (a
    protected-left phase counts only its left-turn lanes)."""
    best = 0.0
    for link in np.unique(net.mov_from_link[movs]):
        mine = movs[net.mov_from_link[movs] == link]
        used = np.zeros(int(net.link_lanes[link]), dtype=bool)
        for m in mine:
            used[net.mov_lane_first[m] : net.mov_lane_last[m] + 1] = True
        per_lane = net.link_capacity_vph[link] / net.link_lanes[link]
        best = max(best, float(per_lane * used.sum()))
    return best


@njit(cache=True)
def _advance(phase_offsets, green_s, yellow_s, all_red_s, phase, stage, left_s, s, dt_s):
    """Advance signal ``s`` by ``dt_s`` through its green / yellow / all-red stages."""
    first = phase_offsets[s]
    n_ph = phase_offsets[s + 1] - first
    left_s[s] -= dt_s
    while left_s[s] <= 1e-9:
        if stage[s] == 0:
            stage[s] = 1
            left_s[s] += yellow_s
        elif stage[s] == 1:
            stage[s] = 2
            left_s[s] += all_red_s
        else:
            stage[s] = 0
            phase[s] = (phase[s] + 1) % n_ph
            left_s[s] += green_s[first + phase[s]]


@njit(cache=True)
def update_signals(
    phase_offsets,
    phase_mov_offsets,
    phase_movs,
    green_s,
    yellow_s,
    all_red_s,
    phase,
    stage,
    left_s,
    mov_state,
    dt_s,
):
    """Advance every signal by ``dt_s`` and write its movements' RED / YELLOW / GREEN."""
    for s in range(phase.shape[0]):
        first, last = phase_offsets[s], phase_offsets[s + 1]
        if last - first > 1:
            _advance(phase_offsets, green_s, yellow_s, all_red_s, phase, stage, left_s, s, dt_s)
        for q in range(first, last):
            state = RED
            if q - first == phase[s]:
                state = GREEN if stage[s] == 0 else (YELLOW if stage[s] == 1 else RED)
            for i in range(phase_mov_offsets[q], phase_mov_offsets[q + 1]):
                mov_state[phase_movs[i]] = state


def run_signals(plans: SignalPlans, mov_state: np.ndarray, dt_s: float) -> None:
    """Advance all plans by ``dt_s`` (0 just writes the current states)."""
    update_signals(*plans.kernel_args(), mov_state, dt_s)
