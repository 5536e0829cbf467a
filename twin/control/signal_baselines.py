"""Signal-control baselines: fixed-time, actuated and max-pressure.

Each is a policy under the contract of :mod:`twin.control.policy`: ``act(obs: SignalObs)``
returns one phase index per intersection; the engine enforces minimum green, yellow, all-red
and maximum green (``[control] min_green`` / ``max_green``).
"""

from __future__ import annotations

import numpy as np

from twin.control.registry import register
from twin.control.signals import SignalObs


@register("signals", "fixed_time")
class FixedTime:
    """Fixed-time Webster (1958) plans, the engine's default; no decisions.

    The plans of :func:`twin.traffic.signals.webster_plans` run as with no control."""

    kind = "signals"
    name = "fixed_time"
    engine_plan = True  # the engine keeps its own plans: no requests

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: SignalObs) -> np.ndarray:
        return obs.phase.copy()


@register("signals", "max_pressure")
class MaxPressure:
    """Max-pressure (Varaiya 2013): the phase of highest pressure, after minimum green.

    Varaiya, Transp. Res. C 36 (2013): at each decision, the phase of highest
    pressure (``obs.phase_pressure_veh``: queues served minus queues fed); the current phase
    keeps the green on ties. The engine holds every green for its minimum, as RESCO's and
    LibSignal's max-pressure baselines do."""

    kind = "signals"
    name = "max_pressure"

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: SignalObs) -> np.ndarray:
        pressure = np.where(obs.phase_mask, obs.phase_pressure_veh, -np.inf)
        best = np.argmax(pressure, axis=1)
        rows = np.arange(len(obs))
        keep = pressure[rows, obs.phase] >= pressure[rows, best]
        return np.where(keep, obs.phase, best)


@register("signals", "actuated")
class Actuated:
    """Vehicle-actuated: gap-out and max-out on stop-line detectors, as SUMO's actuated.

    A green is extended while a vehicle is within the detector range of a green approach
    (``[control] detector_m``, 50 m: about SUMO's 3 s max-gap at 50 km/h plus a queue's
    discharge); when the green approaches are empty it gaps out to the next phase in order
    whose approaches have a vehicle (phases with no demand are skipped, as with NEMA recall
    off); the engine's ``max_green`` ends a green that never gaps out. With no demand anywhere
    the green rests where it is. Decisions every ``signal_interval`` (1-2 s follows the
    detectors most closely; the 5 s default is coarser)."""

    kind = "signals"
    name = "actuated"

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: SignalObs) -> np.ndarray:
        demand = (obs.approach_count_veh > 0) | (obs.approach_queue_veh > 0)  # (N, A)
        phase_demand = (obs.phase_serves & demand[:, None, :]).any(axis=2) & obs.phase_mask
        rows = np.arange(len(obs))
        out = obs.phase.copy()
        for i in rows:
            cur, n = int(obs.phase[i]), int(obs.n_phases[i])
            if phase_demand[i, cur]:
                continue  # extend the green while its approaches have traffic
            for k in range(1, n):
                nxt = (cur + k) % n
                if phase_demand[i, nxt]:
                    out[i] = nxt
                    break
        return out
