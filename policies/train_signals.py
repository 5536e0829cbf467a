"""Train the shipped signal policy: max-pressure plus a learned residual, PPO, ONNX out.

    pip install -e ".[train]"
    NUMBA_NUM_THREADS=1 python policies/train_signals.py   # ~15 min on this 2-core machine

The policy reads one row of the signal observation spec (twin.control.SIGNAL_SPEC) per
intersection and scores its phases: each phase's max-pressure (Varaiya 2013) plus a residual
of at most 3 vehicles from one small network shared by every phase of every intersection
(:class:`PhaseScorer`), so the model runs on any map and any phase count (Dortmund is never
seen in training) and starts as max-pressure. Training, all on
policies/train-baltimore.toml (Baltimore 07:30-08:30) with seeds from 1000 up:

1. PPO (Schulman et al. 2017; clipped objective, GAE) from that start, with a local reward
   per intersection: minus the time lost (SUMO's time loss) in each 5 s decision by the
   vehicles on its approaches (``--reward queue``, minus its halted vehicles as sumo-rl's
   queue reward, made validation worse: 128 -> 140 s in 10 iterations), each intersection
   one of many parallel agents sharing the weights; the sampling policy is a softmax over the
   scores times a learned sharpness;
2. after every PPO iteration the greedy policy is scored (mean delay per trip) on a
   validation seed (999) and the best iteration is kept (iteration 0: max-pressure itself).

The exported ONNX model computes the scores from the raw rows; 8 scores per row.
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
from twin.control.onnx import export_torch
from twin.control.signals import MAX_PHASES, SIGNAL_SPEC
from twin.scenario import load_scenario

HERE = Path(__file__).resolve().parent
TRAIN_SEED0 = 1000
VALIDATION_SEED = 999


def cols(name: str) -> list[int]:
    """The spec columns of a per-phase or per-approach feature, in order."""
    if name.startswith("approach"):
        return [SIGNAL_SPEC.index(f"approach{a}_{name[9:]}") for a in range(8)]
    return [SIGNAL_SPEC.index(f"phase{p}_{name}") for p in range(MAX_PHASES)]


PRESSURE, ACTIVE, PRESENT = cols("pressure_veh"), cols("active"), cols("present")
QUEUE, COUNT = cols("approach_queue_veh"), cols("approach_count_veh")
TIME, MIN_GREEN, STAGE, N_PHASES = (
    SIGNAL_SPEC.index(n) for n in ("time_in_stage_s", "min_green_passed", "stage", "n_phases")
)


class PhaseScorer(nn.Module):
    """Raw observation rows -> phase scores: max-pressure plus a bounded learned residual.

    ``score_p = pressure_p + R tanh(g(x_p)) + K active_p`` with ``g`` one small network
    shared by every phase (so phase order does not matter and any phase count works), fed the
    phase's pressure and whether it is active, the time in the stage, the stage, whether the
    minimum green has passed, the phase count and the junction's total queue and count. With
    ``g = 0`` (the initial weights) it is max-pressure keeping the current phase unless
    another one's pressure is ``K`` = 0.25 vehicles higher (so that the small residuals of
    early training do not flip ties into needless switches). Absent phases score -1e9. ``R``
    (3 vehicles) bounds how far it may move from max-pressure.
    """

    def __init__(self, hidden: int = 32, bound_veh: float = 3.0, keep_veh: float = 0.25) -> None:
        super().__init__()
        self.bound_veh = bound_veh
        self.keep_veh = keep_veh
        self.g = nn.Sequential(
            nn.Linear(8, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, 1),
        )  # fmt: skip
        nn.init.zeros_(self.g[-1].weight)
        nn.init.zeros_(self.g[-1].bias)
        self.value = nn.Sequential(nn.Linear(SIGNAL_SPEC.width, 64), nn.Tanh(), nn.Linear(64, 1))
        self.log_beta = nn.Parameter(torch.tensor(1.0))  # sharpness of the sampling policy

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        p, a, m = obs[:, PRESSURE], obs[:, ACTIVE], obs[:, PRESENT]
        n = p.shape[1]

        def each(col: int, scale: float) -> torch.Tensor:
            return (obs[:, col] / scale).unsqueeze(1).expand(-1, n)

        x = torch.stack(
            [p / 10.0, a, a * obs[:, TIME].unsqueeze(1) / 30.0, each(MIN_GREEN, 1.0),
             each(STAGE, 2.0), each(N_PHASES, 4.0),
             (obs[:, QUEUE].sum(1) / 10.0).unsqueeze(1).expand(-1, n),
             (obs[:, COUNT].sum(1) / 10.0).unsqueeze(1).expand(-1, n)],
            dim=-1,
        )  # fmt: skip
        residual = self.bound_veh * torch.tanh(self.g(x).squeeze(-1))
        score = p + residual + self.keep_veh * a
        return torch.where(m > 0.5, score, torch.full_like(score, -1e9))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits of the sampling policy (its argmax is the scores' argmax)."""
        return self.scores(obs) * self.log_beta.exp()

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs / torch.tensor([10.0] * SIGNAL_SPEC.width)
        return self.value(x).squeeze(-1)


class Scores(nn.Module):
    """The exported part: the scores."""

    def __init__(self, net: PhaseScorer) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net.scores(obs)


def make_env(decision_s: float = 5.0) -> SignalEnv:
    return SignalEnv(load_scenario(HERE / "train-baltimore.toml"), decision_s=decision_s)


def rollout(
    net: PhaseScorer, env: SignalEnv, seed: int, greedy: bool = False, reward: str = "queue"
) -> dict:
    """One episode; per decision the rows, actions, log-probs, values and local rewards:
    "queue", minus the halted vehicles on the junction's approaches after the step, or
    "delay", minus the time lost in the step by the vehicles that began it on them (s)."""
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
        by_trip = env.sim.by_trip  # by trip: the fleet may be renumbered in the step
        lost0, link0 = by_trip.time_loss_s.all(), by_trip.link.all()
        obs, _, _, done, _ = env.step(a.numpy())
        if reward == "queue":
            r = -env.last_obs.approach_queue_veh.sum(axis=1)
        else:
            on = link0 >= 0
            per_link = np.bincount(link0[on], by_trip.time_loss_s.all()[on] - lost0[on],
                                   minlength=env.sim.net.n_links)  # fmt: skip
            appr = env.signal_control.layout.approach_link
            r = -np.where(appr >= 0, per_link[np.maximum(appr, 0)], 0.0).sum(axis=1)
        buf["rew"].append(r.astype(np.float32))
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
    export_torch(Scores(net), SIGNAL_SPEC, path, "scores")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "signals.onnx")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--episodes-per-iteration", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--reward", choices=["queue", "delay"], default="delay")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    env = make_env()
    net = PhaseScorer()
    log = {"iterations": [], "env_steps": 0}
    val = rollout(net, env, VALIDATION_SEED, greedy=True)["mean_delay_s"]
    log["initial_validation_delay_s"] = val
    best = (val, {k: v.clone() for k, v in net.state_dict().items()}, 0)
    print(f"start (max-pressure): validation delay {val:.1f} s", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    seed = TRAIN_SEED0
    for it in range(1, args.iterations + 1):
        parts = []
        for _ in range(args.episodes_per_iteration):
            ep = rollout(net, env, seed, reward=args.reward)
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
