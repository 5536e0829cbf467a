"""Train the shipped charging policy: one network shared by every EV, PPO, ONNX out.

    pip install -e ".[train]"
    NUMBA_NUM_THREADS=1 python policies/train_charging.py   # ~20 min on this 2-core machine

The policy reads one row of the charging observation spec (twin.control.CHARGING_SPEC) per
plugged-in EV and returns its set-point in kW (``charger kW x sigmoid(score)``); every EV
uses the same weights. Training, on policies/train-charging.toml (Baltimore 17:00-07:00, all
EVs) with seeds from 1000 up:

1. behaviour cloning of least-laxity-first (its set-point as a share of the charger, on its
   own trajectories) for a warm start;
2. PPO (clipped objective) with a Gaussian on the score and a local reward per EV and
   decision: minus its energy cost, minus its share (by energy drawn) of its transformer's
   kVA-minutes above rating (measured every energy tick), times ``--peak-usd-per-kvah``,
   minus its target energy missing when it leaves, times ``--unmet-usd-per-kwh``; one-step
   advantages (an EV's next decision, or nothing once it has left);
3. after every iteration the deterministic policy is scored on a validation seed (999) by the
   same total reward, and the best iteration is kept.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from twin.clock import Process
from twin.control.charging import CHARGING_SPEC, ChargingControl
from twin.control.charging_baselines import LeastLaxityFirst
from twin.control.onnx import export_torch
from twin.model import CityModel
from twin.scenario import load_scenario

HERE = Path(__file__).resolve().parent
TRAIN_SEED0 = 1000
VALIDATION_SEED = 999


def feature_scale() -> np.ndarray:
    scale = np.ones(CHARGING_SPEC.width, dtype=np.float32)
    for i, f in enumerate(CHARGING_SPEC.features):
        scale[i] = {"h": 12.0, "USD/kWh": 0.2, "kWh": 30.0, "kW": 100.0, "kVA": 300.0}.get(
            f.unit, 1.0
        )
        if f.name == "max_p_kw":
            scale[i] = 10.0
    return scale


MAX_P = CHARGING_SPEC.index("max_p_kw")


class SetPoint(nn.Module):
    """Raw rows -> a score per EV (the mean of the Gaussian in logit space)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(feature_scale()))
        self.mu = nn.Sequential(
            nn.Linear(CHARGING_SPEC.width, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
            nn.Tanh(), nn.Linear(hidden, 1),
        )  # fmt: skip
        self.value = nn.Sequential(
            nn.Linear(CHARGING_SPEC.width, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )
        self.log_std = nn.Parameter(torch.tensor(-0.5))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mu(obs / self.scale).squeeze(-1)

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs / self.scale).squeeze(-1)


class Kilowatts(nn.Module):
    """The exported part: kW = charger kW x sigmoid(score), shape (batch, 1)."""

    def __init__(self, net: SetPoint) -> None:
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs[:, MAX_P] * torch.sigmoid(self.net(obs))).unsqueeze(-1)


class Actions:
    """A charging policy whose set-points the trainer sets before each decision."""

    kind, name, plug_in_kw = "charging", "trainer", 0.0

    def __init__(self, choose) -> None:
        self.choose = choose

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs):
        return self.choose(obs)


class Episode:
    """One run of the training scenario under a set-point function, with per-EV rewards."""

    def __init__(self, seed: int, choose, peak_w: float, unmet_w: float) -> None:
        sc = load_scenario(HERE / "train-charging.toml").with_overrides({"seed": seed})
        self.model = CityModel(sc)
        self.ctl = ChargingControl(self.model, Actions(choose))
        evs = self.ctl.evs
        self.over_kva_min = np.zeros(len(self.ctl.trafo_rating_kva))
        self.model.clock.register(Process("overload-meter", 60.0, self._meter, order=210))
        self.peak_w, self.unmet_w = peak_w, unmet_w
        self.price = self.ctl.tariff_day
        self.rows: list[dict] = []
        self._evs = evs

    def _meter(self, t_s: float) -> None:
        loading, _, _ = self.ctl.trafo_state()
        self.over_kva_min += np.maximum(loading - self.ctl.trafo_rating_kva, 0.0)

    def run(self) -> tuple[list[dict], float]:
        m, ctl, evs = self.model, self.ctl, self._evs
        m.clock.run_until(m.start_s)
        total = 0.0
        t = m.start_s
        while t < m.end_s - 1e-9:
            obs = ctl.observe(t)
            ctl.decide(t)
            kw = evs.p_set_kw[obs.ev].copy()
            e0, u0 = evs.energy_kwh.copy(), evs.unmet_departure_kwh.copy()
            self.over_kva_min[:] = 0.0
            t = min(t + ctl.interval_s, m.end_s)
            m.clock.run_until(t)
            de = evs.energy_kwh - e0
            du = evs.unmet_departure_kwh - u0
            tr = ctl._ev_trafo
            on_trafo = np.bincount(tr, de, minlength=len(self.over_kva_min))
            share = np.divide(de, on_trafo[tr], out=np.zeros_like(de), where=on_trafo[tr] > 0)
            over_kvah = self.over_kva_min[tr] / 60.0 * share
            price = self.price[int(((t - 1) // 3600) % 24)]
            r = -(price * de + self.peak_w * over_kvah + self.unmet_w * du)
            total += float(r.sum())
            self.rows.append({"obs": obs.features, "ev": obs.ev, "kw": kw,
                              "max_p": obs.max_p_kw, "reward": r[obs.ev]})  # fmt: skip
        return self.rows, total


def samples(rows: list[dict], gamma: float) -> dict:
    """Per (EV, decision): observation, reward and the EV's next observation (if any)."""
    obs, rew, nxt, has = [], [], [], []
    for k, row in enumerate(rows):
        nxt_row = rows[k + 1] if k + 1 < len(rows) else None
        pos = {int(e): i for i, e in enumerate(nxt_row["ev"])} if nxt_row else {}
        idx = np.array([pos.get(int(e), -1) for e in row["ev"]], dtype=np.int64)
        obs.append(row["obs"])
        rew.append(row["reward"])
        has.append(idx >= 0)
        nxt.append(np.where((idx >= 0)[:, None], nxt_row["obs"][np.maximum(idx, 0)], 0.0)
                   if nxt_row else np.zeros_like(row["obs"]))  # fmt: skip
    return {"obs": np.concatenate(obs).astype(np.float32),
            "rew": np.concatenate(rew).astype(np.float32),
            "next": np.concatenate(nxt).astype(np.float32),
            "has_next": np.concatenate(has)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "charging.onnx")
    ap.add_argument("--bc-episodes", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--episodes-per-iteration", type=int, default=2)
    ap.add_argument("--peak-usd-per-kvah", type=float, default=2.0)
    ap.add_argument("--unmet-usd-per-kwh", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--gamma", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    net = SetPoint()
    w = (args.peak_usd_per_kvah, args.unmet_usd_per_kwh)

    llf = LeastLaxityFirst()
    xs, ys = [], []
    for e in range(args.bc_episodes):
        rows, _ = Episode(TRAIN_SEED0 + 500 + e, llf.act, *w).run()
        for row in rows:
            xs.append(row["obs"])
            ys.append(np.clip(row["kw"] / row["max_p"], 0.02, 0.98))
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.log(np.concatenate(ys) / (1 - np.concatenate(ys)))).float()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(30):
        perm = torch.randperm(len(x))
        for k in range(0, len(x), 4096):
            i = perm[k : k + 4096]
            loss = ((net(x[i]) - y[i]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def greedy(obs):
        with torch.no_grad():
            s = torch.sigmoid(net(torch.from_numpy(obs.features))).numpy()
        return s.astype(np.float64) * obs.max_p_kw

    def validate() -> float:
        return Episode(VALIDATION_SEED, greedy, *w).run()[1]

    best_val = validate()
    best = ({k: v.clone() for k, v in net.state_dict().items()}, 0)
    log = {"bc_samples": len(x), "bc_validation_reward": best_val, "iterations": []}
    print(f"behaviour cloning on {len(x)} samples: validation reward {best_val:,.0f}", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    seed = TRAIN_SEED0
    steps = 0
    for it in range(1, args.iterations + 1):
        batches = []
        for _ in range(args.episodes_per_iteration):
            noise: list[np.ndarray] = []

            def explore(obs, noise=noise):
                with torch.no_grad():
                    mu = net(torch.from_numpy(obs.features)).numpy()
                u = mu + np.exp(net.log_std.item()) * rng.standard_normal(len(mu))
                noise.append(u)
                return (1.0 / (1.0 + np.exp(-u))) * obs.max_p_kw

            rows, _ = Episode(seed, explore, *w).run()
            seed += 1
            b = samples(rows, args.gamma)
            b["u"] = np.concatenate(noise).astype(np.float32)
            batches.append(b)
        b = {k: np.concatenate([q[k] for q in batches]) for k in batches[0]}
        steps += len(b["rew"])
        obs, u = torch.from_numpy(b["obs"]), torch.from_numpy(b["u"])
        with torch.no_grad():
            std = net.log_std.exp()
            logp_old = torch.distributions.Normal(net(obs), std).log_prob(u)
            v_next = net.v(torch.from_numpy(b["next"])) * torch.from_numpy(b["has_next"])
            target = torch.from_numpy(b["rew"]) + args.gamma * v_next
            adv = target - net.v(obs)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        for _ in range(4):
            perm = torch.randperm(len(obs))
            for k in range(0, len(obs), 8192):
                i = perm[k : k + 8192]
                dist = torch.distributions.Normal(net(obs[i]), net.log_std.exp())
                ratio = torch.exp(dist.log_prob(u[i]) - logp_old[i])
                pg = -torch.min(ratio * adv[i], ratio.clamp(0.9, 1.1) * adv[i]).mean()
                v_loss = ((net.v(obs[i]) - target[i]) ** 2).mean()
                loss = pg + 0.5 * v_loss / (target.var() + 1e-8)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 0.5)
                opt.step()
        val = validate()
        log["iterations"].append({"iteration": it, "validation_reward": val,
                                  "wall_s": time.perf_counter() - t0})  # fmt: skip
        print(f"iteration {it}: validation reward {val:,.0f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        if val > best_val:
            best_val, best = val, ({k: v.clone() for k, v in net.state_dict().items()}, it)
    net.load_state_dict(best[0])
    export(net, args.out)
    log.update(best_iteration=best[1], best_validation_reward=best_val, ev_decisions=steps,
               wall_s=time.perf_counter() - t0,
               args=vars(args) | {"out": str(args.out)})  # fmt: skip
    args.out.with_suffix(".train.json").write_text(json.dumps(log, indent=2))
    print(f"wrote {args.out} (best iteration {best[1]})")


def export(net: SetPoint, path: Path) -> None:
    export_torch(Kilowatts(net), CHARGING_SPEC, path, "kw")


if __name__ == "__main__":
    main()
