"""Train the shipped signal policy: one network shared by every intersection, PPO, ONNX out.

    pip install -e ".[train]"
    NUMBA_NUM_THREADS=1 python policies/train_signals.py   # ~25 min on this 2-core machine

The policy reads one row of the signal observation spec (twin.control.SIGNAL_SPEC) per
intersection and scores its phases; every intersection of the city uses the same weights,
so the model runs on any map (Dortmund is never seen in training). Training, all on
policies/train-baltimore.toml (Baltimore 07:30-08:30) with seeds from 1000 up:

1. behaviour cloning of max-pressure (cross-entropy on its choices) for a warm start;
2. PPO (Schulman et al. 2017; clipped objective, GAE) with a local reward per intersection:
   minus the halted vehicles on its approaches after each 5 s decision, as sumo-rl's queue
   reward, and each intersection's rows as one of many parallel agents (parameter sharing);
3. after every PPO iteration the policy is scored (mean delay per trip) on a validation seed
   (999) and the best iteration is kept.

The exported ONNX model includes the input scaling; it returns 8 phase scores per row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from twin.control.envs import SignalEnv
from twin.control.signal_baselines import MaxPressure
from twin.control.signals import MAX_PHASES, SIGNAL_SPEC
from twin.scenario import load_scenario

HERE = Path(__file__).resolve().parent
TRAIN_SEED0 = 1000
VALIDATION_SEED = 999


def feature_scale() -> np.ndarray:
    """Divide each column by a typical magnitude, so inputs are O(1)."""
    scale = np.ones(SIGNAL_SPEC.width, dtype=np.float32)
    for i, f in enumerate(SIGNAL_SPEC.features):
        if f.unit == "veh":
            scale[i] = 10.0
        elif f.unit == "s":
            scale[i] = 30.0
        elif f.unit == "m/s":
            scale[i] = 15.0
        elif f.unit in ("count", "index", "code"):
            scale[i] = 4.0
    return scale


PRESENT = [SIGNAL_SPEC.index(f"phase{p}_present") for p in range(MAX_PHASES)]


class PhaseScorer(nn.Module):
    """Raw observation rows -> phase scores (absent phases get -1e9)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(feature_scale()))
        self.body = nn.Sequential(
            nn.Linear(SIGNAL_SPEC.width, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.head = nn.Linear(hidden, MAX_PHASES)
        self.value = nn.Sequential(
            nn.Linear(SIGNAL_SPEC.width, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs / self.scale
        present = obs[:, PRESENT] > 0.5
        return torch.where(present, self.head(self.body(x)), torch.full_like(obs[:, :8], -1e9))

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs / self.scale).squeeze(-1)


class Scores(nn.Module):
    """The exported part: scores only."""

    def __init__(self, net: PhaseScorer) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def make_env(decision_s: float = 5.0) -> SignalEnv:
    return SignalEnv(load_scenario(HERE / "train-baltimore.toml"), decision_s=decision_s)


def behaviour_cloning(net: PhaseScorer, env: SignalEnv, episodes: int, epochs: int) -> float:
    """Fit the scores to max-pressure's choices on its own trajectories."""
    mp = MaxPressure()
    xs, ys = [], []
    for e in range(episodes):
        env.reset(seed=TRAIN_SEED0 + 500 + e)
        done = False
        while not done:
            obs = env.last_obs
            a = mp.act(obs)
            xs.append(obs.features)
            ys.append(a)
            *_, done, _ = env.step(a)
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys)).long()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for k in range(0, len(x), 4096):
            idx = perm[k : k + 4096]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    return acc


def rollout(net: PhaseScorer, env: SignalEnv, seed: int, greedy: bool = False) -> dict:
    """One episode; per decision the rows, actions, log-probs, values and local rewards."""
    obs, _ = env.reset(seed=seed)
    buf = {"obs": [], "act": [], "logp": [], "val": [], "rew": []}
    done = False
    while not done:
        x = torch.from_numpy(obs)
        with torch.no_grad():
            logits = net(x)
            dist = torch.distributions.Categorical(logits=logits)
            a = logits.argmax(1) if greedy else dist.sample()
            buf["logp"].append(dist.log_prob(a).numpy())
            buf["val"].append(net.v(x).numpy())
        buf["obs"].append(obs)
        buf["act"].append(a.numpy())
        obs, _, _, done, _ = env.step(a.numpy())
        buf["rew"].append(-env.last_obs.approach_queue_veh.sum(axis=1).astype(np.float32))
    out = {k: np.stack(v) for k, v in buf.items()}  # (T, N, ...)
    out["mean_delay_s"] = mean_delay_s(env)
    return out


def mean_delay_s(env: SignalEnv) -> float:
    from twin.evaluation.kpis import trip_delays_s

    sim = env.sim
    return float(trip_delays_s(sim.trip_table(), sim.t_s).mean())


def gae(rew: np.ndarray, val: np.ndarray, gamma: float, lam: float) -> tuple:
    steps = len(rew)
    adv = np.zeros_like(rew)
    last = np.zeros_like(rew[0])
    for t in reversed(range(steps)):
        nxt = val[t + 1] if t + 1 < steps else val[t]  # bootstrap at the time limit
        delta = rew[t] + gamma * nxt - val[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + val


def ppo_update(net, opt, batch, *, epochs=4, minibatch=8192, clip=0.1, vf=0.5, ent=0.003):
    obs = torch.from_numpy(batch["obs"].reshape(-1, SIGNAL_SPEC.width))
    act = torch.from_numpy(batch["act"].reshape(-1)).long()
    logp_old = torch.from_numpy(batch["logp"].reshape(-1))
    adv = torch.from_numpy(batch["adv"].reshape(-1))
    ret = torch.from_numpy(batch["ret"].reshape(-1))
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    for _ in range(epochs):
        perm = torch.randperm(len(obs))
        for k in range(0, len(obs), minibatch):
            i = perm[k : k + minibatch]
            dist = torch.distributions.Categorical(logits=net(obs[i]))
            ratio = torch.exp(dist.log_prob(act[i]) - logp_old[i])
            pg = -torch.min(ratio * adv[i], ratio.clamp(1 - clip, 1 + clip) * adv[i]).mean()
            v_loss = ((net.v(obs[i]) - ret[i]) ** 2).mean()
            loss = pg + vf * v_loss - ent * dist.entropy().mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 0.5)
            opt.step()


def export(net: PhaseScorer, path: Path) -> None:
    import onnx

    model = Scores(net).eval()
    torch.onnx.export(
        model, torch.zeros(1, SIGNAL_SPEC.width), path, input_names=["obs"],
        output_names=["scores"], dynamic_axes={"obs": {0: "batch"}, "scores": {0: "batch"}},
    )  # fmt: skip
    m = onnx.load(path, load_external_data=True)
    entry = m.metadata_props.add()
    entry.key, entry.value = "twin_spec", f"{SIGNAL_SPEC.kind}/{SIGNAL_SPEC.version}"
    onnx.save(m, path, save_as_external_data=False)
    Path(f"{path}.data").unlink(missing_ok=True)  # the exporter's weights, now inside the model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "signals.onnx")
    ap.add_argument("--bc-episodes", type=int, default=4)
    ap.add_argument("--bc-epochs", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--episodes-per-iteration", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    env = make_env()
    net = PhaseScorer()
    acc = behaviour_cloning(net, env, args.bc_episodes, args.bc_epochs)
    log = {"bc_accuracy": acc, "iterations": [], "env_steps": 0}
    val = rollout(net, env, VALIDATION_SEED, greedy=True)["mean_delay_s"]
    best = (val, {k: v.clone() for k, v in net.state_dict().items()}, 0)
    print(f"behaviour cloning: accuracy {acc:.3f}, validation delay {val:.1f} s", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    seed = TRAIN_SEED0
    for it in range(1, args.iterations + 1):
        parts = []
        for _ in range(args.episodes_per_iteration):
            ep = rollout(net, env, seed)
            seed += 1
            ep["adv"], ep["ret"] = gae(ep["rew"], ep["val"], 0.98, 0.95)
            parts.append(ep)
            log["env_steps"] += len(ep["rew"])
        batch = {k: np.concatenate([p[k] for p in parts]) for k in ("obs", "act", "logp", "adv",
                                                                     "ret")}  # fmt: skip
        ppo_update(net, opt, batch)
        val = rollout(net, env, VALIDATION_SEED, greedy=True)["mean_delay_s"]
        train_delay = float(np.mean([p["mean_delay_s"] for p in parts]))
        log["iterations"].append({"iteration": it, "train_delay_s": train_delay,
                                  "validation_delay_s": val,
                                  "wall_s": time.perf_counter() - t0})  # fmt: skip
        print(f"iteration {it}: train delay {train_delay:.1f} s, validation {val:.1f} s "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        if val < best[0]:
            best = (val, {k: v.clone() for k, v in net.state_dict().items()}, it)
    net.load_state_dict(best[1])
    log.update(
        best_iteration=best[2],
        best_validation_delay_s=best[0],
        wall_s=time.perf_counter() - t0,
        args=vars(args) | {"out": str(args.out)},
    )
    export(net, args.out)
    args.out.with_suffix(".train.json").write_text(json.dumps(log, indent=2))
    print(f"wrote {args.out} (best iteration {best[2]}, validation delay {best[0]:.1f} s)")


if __name__ == "__main__":
    main()
