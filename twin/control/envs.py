"""Training environments: Gymnasium (one agent, all signals; or one agent, the EV fleet) and
PettingZoo (one agent per signalised intersection), on a scenario or on a network and trips.

Both run the twin in-process (no ports, no sockets: any number of environments per process)
and step it one decision interval at a time. Observations follow
:data:`twin.control.signals.SIGNAL_SPEC`; actions are phase indices (the engine enforces
minimum green, yellow, all-red and maximum green). Rewards, per decision:

- ``"queue"`` (default): minus the halted vehicles on the controlled approaches after the
  step (sumo-rl's queue reward);
- ``"delay"``: minus the time lost by all vehicles during the step, vehicle-seconds
  (time loss as SUMO defines it: time driven below the desired speed).

The charging environment (:class:`ChargingEnv`) is described on its class.

``reset(seed=...)`` rebuilds the episode from that seed: the same seed gives the same trips,
drivers and signal offsets, so the same actions give the same observations and rewards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from twin.control.config import ControlConfig
from twin.control.signals import SIGNAL_SPEC, SignalControl, SignalObs
from twin.network.road import RoadNet
from twin.scenario import Scenario
from twin.traffic.demand import Trips
from twin.traffic.sim import TrafficSim

REWARDS = ("queue", "delay")


class _Episode:
    """One episode of traffic under external signal control, on a scenario or a network."""

    def __init__(
        self,
        *,
        scenario: Scenario | None,
        network: RoadNet | None,
        trips: Callable[[int], Trips] | None,
        control: ControlConfig,
        episode_s: float | None,
    ) -> None:
        if (scenario is None) == (network is None or trips is None):
            raise ValueError("give a scenario, or a network and a trips(seed) function")
        self.scenario = scenario
        self.control = control
        self.model = None
        self._trips = trips
        if scenario is not None:
            from twin.network.cache import load_roadnet

            self.network = load_roadnet(scenario.map.file, scenario.map.build_options())
            self.start_s = scenario.time.start_s
            self.episode_s = episode_s or scenario.time.duration_s
        else:
            self.network = network
            self.start_s = 0.0
            self.episode_s = episode_s or 3600.0
        self.sim: TrafficSim | None = None
        self.ctl: SignalControl | None = None

    def reset(self, seed: int) -> None:
        c = self.control
        if self.scenario is not None:
            from twin.model import CityModel

            sc = self.scenario.with_overrides(
                {"seed": seed, "energy.enabled": False, "control.signals": "fixed_time",
                 "control.charging": "uncontrolled"}
            )  # fmt: skip
            self.model = CityModel(sc, network=self.network)
            self.model.clock.run_until(self.start_s)
            self.sim = self.model.traffic.sim
        else:
            self.sim = TrafficSim(self.network, self._trips(seed), seed=seed, start_s=0.0)
        self.ctl = SignalControl(
            self.sim, None, min_green_s=c.min_green, max_green_s=c.max_green,
            detector_m=c.detector_m,
        )  # fmt: skip
        self._lost_s = float(self.sim.fleet.time_loss_s.sum())

    def advance(self) -> None:
        t = self.sim.t_s + self.control.signal_interval
        if self.model is not None:
            self.model.clock.run_until(t)
            self.model.traffic.sync(t)
        else:
            self.sim.run_until(t)

    @property
    def done(self) -> bool:
        return self.sim.t_s >= self.start_s + self.episode_s - 1e-9

    def delay_s(self) -> float:
        """Time lost by all vehicles since the last call, vehicle-seconds."""
        lost = float(self.sim.fleet.time_loss_s.sum())
        step, self._lost_s = lost - self._lost_s, lost
        return step


def _control(control: ControlConfig | dict | None, decision_s: float | None) -> ControlConfig:
    cfg = control if isinstance(control, ControlConfig) else ControlConfig(**(control or {}))
    if decision_s is not None:
        cfg = cfg.model_copy(update={"signal_interval": float(decision_s)})
    return cfg


def _obs_box(rows: int | None = None) -> spaces.Box:
    low, high = SIGNAL_SPEC.low, SIGNAL_SPEC.high
    if rows is not None:
        low, high = np.tile(low, (rows, 1)), np.tile(high, (rows, 1))
    return spaces.Box(low, high, dtype=np.float32)


class SignalEnv(gym.Env):
    """Gymnasium: one agent choosing the phase of every controlled intersection.

    Observation: float32 ``(N, SIGNAL_SPEC.width)``; action: ``MultiDiscrete`` of each
    intersection's phase count. Give a ``scenario`` (its map, demand and time window; energy
    off) or a ``network`` and ``trips(seed) -> Trips``."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        network: RoadNet | None = None,
        trips: Callable[[int], Trips] | None = None,
        control: ControlConfig | dict | None = None,
        decision_s: float | None = None,
        episode_s: float | None = None,
        reward: str = "queue",
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        cfg = _control(control if control is not None else getattr(scenario, "control", None),
                       decision_s)  # fmt: skip
        self._ep = _Episode(
            scenario=scenario, network=network, trips=trips, control=cfg, episode_s=episode_s
        )
        self.reward_kind = reward
        self._ep.reset(0 if scenario is None else scenario.seed)
        n_phases = self._ep.ctl.layout.n_phases
        self.observation_space = _obs_box(len(n_phases))
        self.action_space = spaces.MultiDiscrete(n_phases)
        self.last_obs: SignalObs | None = None

    @property
    def sim(self) -> TrafficSim:
        return self._ep.sim

    @property
    def signal_control(self) -> SignalControl:
        return self._ep.ctl

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        self._ep.reset(seed)
        self.last_obs = self._ep.ctl.observe()
        return self.last_obs.features, self._info()

    def step(self, action):
        ep = self._ep
        ep.ctl.apply(np.asarray(action).reshape(-1), policy=self)
        ep.advance()
        self.last_obs = ep.ctl.observe()
        if self.reward_kind == "queue":
            reward = -float(self.last_obs.approach_queue_veh.sum())
        else:
            reward = -ep.delay_s()
        return self.last_obs.features, reward, False, ep.done, self._info()

    # the env acts as the policy that apply() names in its errors
    kind, name = "signals", "SignalEnv action"

    def _info(self) -> dict[str, Any]:
        return {"t_s": self._ep.sim.t_s}


class SignalParallelEnv(ParallelEnv):
    """PettingZoo: one agent per controlled intersection ("junction <OSM id>").

    Each agent observes its row of :data:`SIGNAL_SPEC` (float32 ``(width,)``) and chooses a
    phase (``Discrete(n_phases)``); its reward is minus the halted vehicles on its own
    approaches (``"queue"``) or minus the time lost on its approach links (``"delay"``).
    Same constructor as :class:`SignalEnv`."""

    metadata: ClassVar[dict] = {"render_modes": [], "name": "twin_signals_v0"}

    def __init__(self, scenario: Scenario | None = None, **kw: Any) -> None:
        reward = kw.pop("reward", "queue")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        self.reward_kind = reward
        self._single = SignalEnv(scenario, **kw)
        layout = self._single.signal_control.layout
        self.possible_agents = [lab.replace(" ", "_") for lab in layout.labels]
        n_phases = dict(zip(self.possible_agents, layout.n_phases.tolist(), strict=True))
        self._obs_spaces = {a: _obs_box() for a in self.possible_agents}
        self._act_spaces = {a: spaces.Discrete(n) for a, n in n_phases.items()}
        self.agents: list[str] = []
        self.render_mode = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_spaces[agent]

    @property
    def sim(self) -> TrafficSim:
        return self._single.sim

    def reset(self, seed: int | None = None, options: dict | None = None):
        feats, info = self._single.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._per_agent(feats), {a: dict(info) for a in self.agents}

    def step(self, actions: dict[str, int]):
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action for {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        single = self._single
        if self.reward_kind == "delay":
            by_trip = single.sim.by_trip  # by trip: the fleet may be renumbered in the step
            lost_before, link_before = by_trip.time_loss_s.all(), by_trip.link.all()
        vector = np.array([actions[a] for a in self.possible_agents])
        feats, _, _, truncated, info = single.step(vector)
        if self.reward_kind == "queue":
            per = -single.last_obs.approach_queue_veh.sum(axis=1)
        else:
            lost_after = single.sim.by_trip.time_loss_s.all()
            per = -self._lost_on_approaches(lost_after - lost_before, link_before)
        agents = self.agents
        out = (
            self._per_agent(feats),
            {a: float(r) for a, r in zip(agents, per, strict=True)},
            {a: False for a in agents},
            {a: truncated for a in agents},
            {a: dict(info) for a in agents},
        )
        if truncated:
            self.agents = []
        return out

    def _per_agent(self, feats: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.possible_agents, feats, strict=True))

    def _lost_on_approaches(self, lost_s: np.ndarray, link: np.ndarray) -> np.ndarray:
        """Per agent: time lost in the step by the vehicles that began it on its approaches."""
        sim, layout = self._single.sim, self._single.signal_control.layout
        on = link >= 0
        per_link = np.bincount(link[on], weights=lost_s[on], minlength=sim.net.n_links)
        links = np.where(layout.approach_link >= 0, layout.approach_link, 0)
        return np.where(layout.approach_link >= 0, per_link[links], 0.0).sum(axis=1)


def make_vector_env(
    n_envs: int, *args: Any, asynchronous: bool = False, **kw: Any
) -> gym.vector.VectorEnv:
    """``n_envs`` :class:`SignalEnv` copies as one Gymnasium vector env (synchronous by default;
    ``asynchronous=True`` runs each in its own process)."""
    fns = [functools.partial(SignalEnv, *args, **kw) for _ in range(n_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, context="spawn")
    return gym.vector.SyncVectorEnv(fns)


class _Pending:
    """The env's action as a charging policy, for ChargingControl to check and apply."""

    kind, name = "charging", "ChargingEnv action"
    plug_in_kw = 0.0  # an EV plugging in between decisions waits for the next one

    def __init__(self) -> None:
        self.action = np.zeros(0)

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        return self.action[obs.ev]


class ChargingEnv(gym.Env):
    """Gymnasium: one agent setting the charging power of every EV of a scenario.

    Every ``[control] charging_interval`` (default 15 min) the agent sees one row per EV of the
    scenario (``CHARGING_SPEC`` columns, then a last column ``plugged``: 1 for an EV plugged in
    now; the rows of other EVs are zeros) and returns per EV a share of its charger's power in
    ``[0, 1]`` (the set-point is that share times the charger's kW); the set-points of EVs not
    plugged in are ignored. The engine enforces
    charger power and battery limits. Reward per decision, in USD: minus the EVs' energy cost
    over the interval (the scenario's tariff), minus ``peak_usd_per_kvah`` per kVA-hour above
    a transformer's rating (checked with a power flow of the interval's last minute), minus
    ``unmet_usd_per_kwh`` per kWh of target charge missing at departures in the interval.
    The number of EVs depends on the seed (households are drawn per seed), so rows are padded
    to ``max_evs`` (default: 1.25 times the EVs of the scenario's own seed); padding rows are
    zeros and their actions are ignored.
    The scenario must have ``[energy] enabled``; its ``[control] charging`` is ignored."""

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(
        self,
        scenario: Scenario,
        *,
        peak_usd_per_kvah: float = 1.0,
        unmet_usd_per_kwh: float = 1.0,
        episode_s: float | None = None,
        max_evs: int | None = None,
    ) -> None:
        if not scenario.energy.enabled:
            raise ValueError("ChargingEnv needs a scenario with [energy] enabled = true")
        self.scenario = scenario
        self.peak_usd_per_kvah = float(peak_usd_per_kvah)
        self.unmet_usd_per_kwh = float(unmet_usd_per_kwh)
        self.interval_s = float(scenario.control.charging_interval)
        self.episode_s = episode_s or scenario.time.duration_s
        from twin.network.cache import load_roadnet

        self._network = load_roadnet(scenario.map.file, scenario.map.build_options())
        self._policy = _Pending()
        self._build(scenario.seed)
        n = max_evs or int(np.ceil(1.25 * len(self.ctl.evs)))
        self.max_evs = n
        from twin.control.charging import CHARGING_SPEC

        low = np.append(CHARGING_SPEC.low, 0.0).astype(np.float32)
        high = np.append(CHARGING_SPEC.high, 1.0).astype(np.float32)
        self.observation_space = spaces.Box(np.tile(low, (n, 1)), np.tile(high, (n, 1)))
        self.action_space = spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)

    def _build(self, seed: int) -> None:
        from twin.control.charging import ChargingControl
        from twin.model import CityModel

        sc = self.scenario.with_overrides({"seed": seed, "control.charging": "uncontrolled"})
        self.model = CityModel(sc, network=self._network)
        self.model.clock.run_until(sc.time.start_s)
        self.ctl = ChargingControl(self.model, self._policy)
        self._t_end = sc.time.start_s + self.episode_s
        n = len(self.ctl.evs)
        if hasattr(self, "max_evs") and n > self.max_evs:
            raise ValueError(f"seed {seed}: {n} EVs, more than max_evs = {self.max_evs}")

    def _observe(self) -> np.ndarray:
        obs = self.ctl.observe(self.model.now_s)
        out = np.zeros(self.observation_space.shape, dtype=np.float32)
        out[obs.ev, :-1] = obs.features
        out[obs.ev, -1] = 1.0
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        self._build(seed)
        return self._observe(), {"t_s": self.model.now_s}

    def step(self, action):
        model, evs = self.model, self.ctl.evs
        share = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), 0.0, 1.0)
        self._policy.action = share[: len(evs)] * evs.max_p_kw
        t0 = model.now_s
        self.ctl.decide(t0)
        energy_before = evs.energy_kwh.copy()
        unmet_before = float(evs.unmet_departure_kwh.sum())
        t1 = min(t0 + self.interval_s, self._t_end)
        model.clock.run_until(t1)
        ev_kwh = evs.energy_kwh - energy_before
        price = self.scenario.energy.price_per_kwh
        hour = int((0.5 * (t0 + t1)) // 3600) % 24
        price_now = price[hour] if isinstance(price, tuple) else float(price)
        cost = float(ev_kwh.sum()) * price_now
        loading_kva, _, _ = self.ctl.trafo_state()
        rating = self.ctl.trafo_rating_kva
        over_kvah = float(np.maximum(loading_kva - rating, 0.0).sum()) * (t1 - t0) / 3600.0
        unmet = float(evs.unmet_departure_kwh.sum()) - unmet_before
        reward = -(cost + self.peak_usd_per_kvah * over_kvah + self.unmet_usd_per_kwh * unmet)
        info = {"t_s": t1, "ev_cost": cost, "kvah_above_rating": over_kvah,
                "unmet_kwh": unmet}  # fmt: skip
        return self._observe(), reward, False, t1 >= self._t_end - 1e-9, info
