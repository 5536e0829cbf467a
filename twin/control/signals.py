"""Signal control: the observation spec, the batch a policy sees, and applying its choices.

At each decision a signal policy receives one row per signalised intersection with more than
one phase (:class:`SignalObs`), padded to ``MAX_APPROACHES`` approaches and ``MAX_PHASES``
phases with masks, and returns one phase index per row. The engine (the signal kernel, see
:class:`twin.traffic.signals.SignalPlans`) enforces minimum green, yellow, all-red and maximum
green, so a request is a wish: a change starts once the current green has lasted its minimum.

Approaches are the intersection's in-links that some phase serves, in order of the compass
bearing at which they arrive. Phase pressure follows Varaiya (2013) per movement, lane-based
as in RESCO: halted vehicles about to take the movement, minus the halted vehicles on its exit
link per exit lane times the lanes the movement enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from twin.control.detectors import new_readings, read_detectors
from twin.control.policy import Policy, PolicyError, check_actions
from twin.control.spec import Feature, ObsSpec
from twin.traffic.signals import SignalPlans
from twin.traffic.state import end_bearings_deg

MAX_APPROACHES = 8  # shipped maps: at most 6 approaches per signalised junction
MAX_PHASES = 8  # shipped maps: at most 4 phases

_SCALARS = (
    Feature("n_phases", "count", "phases of the intersection"),
    Feature("phase", "index", "current phase (the one being left during yellow / all-red)"),
    Feature("stage", "code", "0 green, 1 yellow, 2 all-red"),
    Feature("time_in_stage_s", "s", "time since the current stage began"),
    Feature("min_green_passed", "0/1", "green and its minimum green has passed"),
)
_PER_APPROACH = (
    ("present", "0/1", "the approach exists (padding rows are 0)"),
    ("queue_veh", "veh", "halted vehicles (below 0.1 m/s) on the approach link"),
    ("count_veh", "veh", "vehicles within the detector range of the stop line"),
    ("speed_mps", "m/s", "their mean speed (the speed limit when there are none)"),
)
_PER_PHASE = (
    ("present", "0/1", "the phase exists"),
    ("active", "0/1", "it is the current phase"),
    ("pressure_veh", "veh", "Varaiya pressure: queues it serves minus queues it feeds"),
)

#: version 1 of the signal observation layout (61 columns)
SIGNAL_SPEC = ObsSpec(
    kind="signals",
    version=1,
    features=(
        *_SCALARS,
        *(
            Feature(f"approach{a}_{n}", u, d)
            for a in range(MAX_APPROACHES)
            for n, u, d in _PER_APPROACH
        ),
        *(
            Feature(f"phase{p}_{n}", u, d, low=-1e6 if n == "pressure_veh" else 0.0)
            for p in range(MAX_PHASES)
            for n, u, d in _PER_PHASE
        ),
    ),
    n_outputs=MAX_PHASES,
    output_doc=f"{MAX_PHASES} scores per row (the engine takes the best phase that exists) "
    "or one phase index per row",
)


@dataclass
class SignalLayout:
    """Which signals are controlled, their approaches and which phase serves which."""

    signals: np.ndarray  # int64 (N,), signal index
    labels: list[str]  # "junction <OSM id>" per row
    n_phases: np.ndarray  # int64 (N,)
    approach_link: np.ndarray  # int64 (N, A), -1 padding
    phase_serves: np.ndarray  # bool (N, P, A)
    phase_row: np.ndarray  # int64 per global phase of a controlled signal: its row
    phase_col: np.ndarray  # int64, its phase index within the signal
    phase_global: np.ndarray  # int64, the global phase index


def signal_layout(net, plans: SignalPlans) -> SignalLayout:
    """The layout of the signals of ``net`` that have more than one phase."""
    n_ph = plans.n_phases()
    signals = np.flatnonzero(n_ph > 1)
    bearing = end_bearings_deg(net)
    n = len(signals)
    appr = np.full((n, MAX_APPROACHES), -1, dtype=np.int64)
    serves = np.zeros((n, MAX_PHASES, MAX_APPROACHES), dtype=bool)
    rows, cols, glob = [], [], []
    labels = []
    for r, s in enumerate(signals):
        node = int(net.signal_node[s])
        label = f"junction {int(net.node_osmid[node])}"
        labels.append(label)
        first, last = int(plans.phase_offsets[s]), int(plans.phase_offsets[s + 1])
        if last - first > MAX_PHASES:
            raise PolicyError(
                f"{label}: {last - first} phases; the signal spec allows {MAX_PHASES}"
            )
        movs = [
            plans.phase_movs[plans.phase_mov_offsets[q] : plans.phase_mov_offsets[q + 1]]
            for q in range(first, last)
        ]
        links = np.unique(net.mov_from_link[np.concatenate(movs)])
        links = links[np.argsort(bearing[links], kind="stable")]
        if len(links) > MAX_APPROACHES:
            raise PolicyError(
                f"{label}: {len(links)} approaches; the signal spec allows {MAX_APPROACHES}"
            )
        appr[r, : len(links)] = links
        for q, m in enumerate(movs):
            serves[r, q, : len(links)] = np.isin(links, net.mov_from_link[m])
            rows.append(r)
            cols.append(q)
            glob.append(first + q)
    return SignalLayout(
        signals=signals.astype(np.int64),
        labels=labels,
        n_phases=n_ph[signals].astype(np.int64),
        approach_link=appr,
        phase_serves=serves,
        phase_row=np.asarray(rows, dtype=np.int64),
        phase_col=np.asarray(cols, dtype=np.int64),
        phase_global=np.asarray(glob, dtype=np.int64),
    )


@dataclass
class SignalObs:
    """One decision's observations, a row per controlled intersection (see SIGNAL_SPEC)."""

    t_s: float
    signal: np.ndarray  # int64 (N,)
    labels: list[str]
    n_phases: np.ndarray  # int64 (N,)
    phase: np.ndarray  # int64 (N,)
    stage: np.ndarray  # int64 (N,)
    time_in_stage_s: np.ndarray  # float64 (N,)
    min_green_passed: np.ndarray  # bool (N,)
    approach_mask: np.ndarray  # bool (N, A)
    approach_queue_veh: np.ndarray  # float64 (N, A)
    approach_count_veh: np.ndarray  # float64 (N, A)
    approach_speed_mps: np.ndarray  # float64 (N, A)
    phase_mask: np.ndarray  # bool (N, P)
    phase_pressure_veh: np.ndarray  # float64 (N, P)
    phase_serves: np.ndarray  # bool (N, P, A): phase p gives green to approach a

    def __len__(self) -> int:
        return len(self.signal)

    @cached_property
    def features(self) -> np.ndarray:
        """The rows as SIGNAL_SPEC lays them out, float32 (N, SIGNAL_SPEC.width)."""
        n = len(self)
        active = np.zeros((n, MAX_PHASES))
        active[np.arange(n), self.phase] = 1.0
        approach = np.stack(
            [
                self.approach_mask,
                self.approach_queue_veh,
                self.approach_count_veh,
                self.approach_speed_mps,
            ],
            axis=2,
        ).reshape(n, -1)
        phase = np.stack([self.phase_mask, active, self.phase_pressure_veh], axis=2).reshape(n, -1)
        scalars = np.stack(
            [self.n_phases, self.phase, self.stage, self.time_in_stage_s, self.min_green_passed],
            axis=1,
        )
        return np.concatenate([scalars, approach, phase], axis=1).astype(np.float32)


class SignalControl:
    """Applies a signal policy to a TrafficSim: observe, act, check, request."""

    def __init__(
        self,
        sim,
        policy: Policy | None,
        *,
        min_green_s: float,
        max_green_s: float,
        detector_m: float,
    ) -> None:
        self.sim = sim
        self.policy = policy
        self.detector_m = float(detector_m)
        plans = sim.plans
        plans.min_green_s, plans.max_green_s = float(min_green_s), float(max_green_s)
        self.layout = signal_layout(sim.net, plans)
        self._readings = new_readings(sim.net.n_links, len(sim.arrays.mov_to_link))
        net = sim.net
        self._mov_to = sim.arrays.mov_to_link.astype(np.int64)
        out_lanes = sim.arrays.mov_out_last - sim.arrays.mov_out_first + 1
        self._down_share = out_lanes / net.link_lanes[self._mov_to]
        # fixed per run: which approach slots exist, their links, their speed limits, and
        # which phases have movements
        self._approach = self.layout.approach_link >= 0
        self._approach_link = np.where(self._approach, self.layout.approach_link, 0)
        self._approach_limit = net.link_speed_mps[self._approach_link].astype(np.float64)
        self._phase_has_movs = np.diff(plans.phase_mov_offsets) > 0
        self.decisions = 0
        self.requests_changed = 0
        if policy is None or not getattr(policy, "engine_plan", False):
            plans.take_control(self.layout.signals)

    @property
    def n(self) -> int:
        return len(self.layout.signals)

    def observe(self) -> SignalObs:
        """The observation of every controlled intersection now."""
        sim, lay, plans = self.sim, self.layout, self.sim.plans
        r = self._readings
        read_detectors(sim.arrays, sim.fleet, self.detector_m, sim.params.halt_mps, r)
        s = lay.signals
        mask, links = self._approach, self._approach_link
        queue = np.where(mask, r.link_halted[links], 0.0)
        count = np.where(mask, r.link_near[links], 0.0)
        speed = np.divide(
            r.link_near_speed[links], count, out=self._approach_limit.copy(), where=count > 0
        )
        speed = np.where(mask, speed, 0.0)
        mov_p = r.mov_queue - r.link_halted[self._mov_to] * self._down_share
        per_phase = (
            np.add.reduceat(np.append(mov_p[plans.phase_movs], 0.0), plans.phase_mov_offsets[:-1])
            * self._phase_has_movs
        )
        pressure = np.zeros((len(s), MAX_PHASES))
        pressure[lay.phase_row, lay.phase_col] = per_phase[lay.phase_global]
        stage = plans.stage[s].astype(np.int64)
        elapsed = plans.elapsed_s[s].copy()
        return SignalObs(
            t_s=sim.t_s,
            signal=s,
            labels=lay.labels,
            n_phases=lay.n_phases,
            phase=plans.phase[s].astype(np.int64),
            stage=stage,
            time_in_stage_s=elapsed,
            min_green_passed=(stage == 0) & (elapsed >= plans.min_green_s - 1e-9),
            approach_mask=mask,
            approach_queue_veh=queue,
            approach_count_veh=count,
            approach_speed_mps=speed,
            phase_mask=np.arange(MAX_PHASES)[None, :] < lay.n_phases[:, None],
            phase_pressure_veh=pressure,
            phase_serves=lay.phase_serves,
        )

    def apply(self, actions: np.ndarray, *, policy: Policy | None = None) -> None:
        """Request phase ``actions[i]`` at row ``i`` (checked: an integer phase that exists)."""
        a = check_actions(
            policy or self.policy,
            actions,
            rows=self.n,
            t_s=self.sim.t_s,
            labels=self.layout.labels,
            low=0,
            high=self.layout.n_phases - 1,
            integer=True,
        ).astype(np.int32)
        req = self.sim.plans.request
        self.requests_changed += int((req[self.layout.signals] != a).sum())
        req[self.layout.signals] = a
        self.decisions += 1

    def decide(self) -> None:
        """One decision of the policy, on the state now."""
        if self.policy is None or getattr(self.policy, "engine_plan", False) or not self.n:
            return
        self.apply(self.policy.act(self.observe()))
