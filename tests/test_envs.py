"""Gymnasium and PettingZoo environments: API checkers, reproducible resets, rewards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pettingzoo = pytest.importorskip("pettingzoo")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from pettingzoo.test import parallel_api_test  # noqa: E402
from test_signal_control import od_trips  # noqa: E402

from twin.control.envs import SignalEnv, SignalParallelEnv, make_vector_env  # noqa: E402
from twin.control.signals import SIGNAL_SPEC  # noqa: E402
from twin.network.synthetic import grid_roadnet  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
MAPS = Path(__file__).resolve().parents[1] / "maps"
NET = grid_roadnet(3, 3, spacing_m=200.0)


def trips(seed: int):
    groups = [(a, b, 500.0) for a, b in ((3, 5), (5, 3), (1, 7), (7, 1), (0, 8), (6, 2))]
    return od_trips(groups, 900.0, seed=seed)


def grid_env(**kw) -> SignalEnv:
    return SignalEnv(network=NET, trips=trips, episode_s=600.0, **kw)


def test_gymnasium_env_passes_the_checker():
    env = grid_env()
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (5, SIGNAL_SPEC.width)  # the grid's 3+ leg junctions
    assert list(env.action_space.nvec) == [2] * 5


def test_pettingzoo_env_passes_the_parallel_api_test():
    env = SignalParallelEnv(network=NET, trips=trips, episode_s=600.0)
    parallel_api_test(env, num_cycles=200)
    assert len(env.possible_agents) == 5 and env.possible_agents[0].startswith("junction_")


def rollout(env: SignalEnv, seed: int, steps: int) -> tuple[np.ndarray, list[float]]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)  # the same actions for every rollout
    seen, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(rng.integers(0, env.action_space.nvec))
        seen.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.stack(seen), rewards


def test_reset_with_a_seed_is_reproducible():
    env = grid_env()
    a = rollout(env, 7, 60)
    b = rollout(env, 7, 60)
    c = rollout(env, 8, 60)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    assert min(a[1]) < 0  # queues formed


def test_episode_ends_by_truncation_at_its_length():
    env = grid_env(decision_s=10.0)
    _, rewards = rollout(env, 1, 1000)
    assert len(rewards) == 60  # 600 s in 10 s decisions


def test_delay_reward_is_the_time_lost_in_the_step():
    env = grid_env(reward="delay")
    env.reset(seed=3)
    for _ in range(30):
        before = env.sim.fleet.time_loss_s.sum()
        _, r, *_ = env.step(np.zeros(5, dtype=int))
        assert r == pytest.approx(-(env.sim.fleet.time_loss_s.sum() - before))
    assert r < 0


def test_pettingzoo_rewards_are_each_junctions_own_queue():
    env = SignalParallelEnv(network=NET, trips=trips, episode_s=600.0)
    obs, _ = env.reset(seed=2)
    for _ in range(40):
        obs, rewards, *_ = env.step({a: 0 for a in env.agents})
    q = [SIGNAL_SPEC.index(f"approach{k}_queue_veh") for k in range(8)]
    for agent, o in obs.items():
        assert rewards[agent] == -o[q].sum()
    assert sum(rewards.values()) < 0


def test_many_environments_in_one_process_and_a_vector_env():
    envs = make_vector_env(3, network=NET, trips=trips, episode_s=300.0)
    obs, _ = envs.reset(seed=[1, 2, 3])
    assert obs.shape == (3, 5, SIGNAL_SPEC.width)
    for _ in range(20):
        obs, rew, *_ = envs.step(envs.action_space.sample())
    assert rew.shape == (3,) and obs.shape == (3, 5, SIGNAL_SPEC.width)
    envs.close()


def test_scenario_env_runs_the_scenarios_traffic(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    sc = load_scenario(SCENARIOS / "baltimore-short.toml")
    env = SignalEnv(sc, episode_s=120.0)
    obs, info = env.reset(seed=1)
    assert info["t_s"] == sc.time.start_s
    assert obs.shape[0] > 100
    obs, _, _, trunc, info = env.step(env.action_space.sample())
    assert info["t_s"] == sc.time.start_s + 5.0 and not trunc


# -- the charging environment ------------------------------------------------------------------


@pytest.fixture(scope="module")
def charging_env(tmp_path_factory):
    from twin.control.envs import ChargingEnv

    tmp = tmp_path_factory.mktemp("chg")
    path = tmp / "evening.toml"
    path.write_text(
        f'seed = 7\n[map]\nfile = "{MAPS / "baltimore.osm.pbf"}"\n'
        '[time]\nstart = "17:00"\nduration = "6h"\nreport_interval = "30min"\n'
        "[traffic]\nenabled = false\n[population]\nhouseholds = 1500\nev_share = 1.0\n"
    )
    return ChargingEnv(load_scenario(path), episode_s=2 * 3600.0)


def test_charging_env_passes_the_checker(charging_env):
    check_env(charging_env, skip_render_check=True)
    n = charging_env.action_space.shape[0]
    assert n > 100 and charging_env.observation_space.shape == (n, 24)


def test_charging_env_rewards_are_the_costs_it_documents(charging_env):
    env = charging_env
    obs, info = env.reset(seed=3)
    assert info["t_s"] == 17 * 3600  # EVs start the run away or unplugged
    obs, r, *_, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert info["ev_cost"] == 0.0  # no power, no cost
    assert (obs[:, -1] == 1).any()  # some got home and plugged in
    rewards, costs = [], []
    while True:
        obs, r, _, trunc, info = env.step(env.action_space.high)  # everyone at full power
        rewards.append(r)
        costs.append(info["ev_cost"])
        assert r == pytest.approx(
            -(info["ev_cost"] + info["kvah_above_rating"] + info["unmet_kwh"])
        )
        if trunc:
            break
    assert len(rewards) == 7 and min(costs) > 0  # 2 h of 15-minute decisions, one done above
    price = env.scenario.energy.price_usd_per_kwh
    ev_kwh = env.ctl.evs.energy_kwh.sum()
    assert sum(costs) == pytest.approx(price * ev_kwh)  # flat tariff: cost = price x energy
