"""Decima-style GNN scheduler for ``mamba4net/CJS-v0`` and its training (imitation warm start + REINFORCE).

Model (after Decima, Mao et al. SIGCOMM 2019): stage features are embedded, then messages flow from
child stages to parents for ``rounds`` steps (``h = h0 + f(A·h)``: a parent sees its descendants'
work, a learned critical path); a job summary pools its stages with the job features; a global
summary pools the jobs. The stage head scores every stage slot (masked softmax, plus a "wait" score
from the global summary); the limit head scores parallelism limits 1..E for the chosen stage's job
(masked to limits above its executors).

Training (``python -m agents.cjs_gnn``): behaviour cloning of a heuristic (``--imitate fair|wfair``)
for a warm start,
then REINFORCE with Decima's time-based baseline — several rollouts of one workload, each decision's
return-to-go compared with the others' at the same wall-clock time — and an entropy bonus, on shorter
episodes (``--jobs``). The checkpoint kept is the best mean JCT on validation seeds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


from .base import BatchPolicy
from .checkpoint import parse_dataclass_args, read_checkpoint, write_checkpoint

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "cjs_gnn"
OBS_KEYS = ("node_features", "job_features", "adjacency", "stage_mask", "limit_mask")


@dataclass(frozen=True)
class GNNConfig:
    hidden: int = 32  # embedding width (Decima uses 16–32)
    rounds: int = 8  # message-passing steps ≥ the depth of TPC-H DAGs, so sinks reach sources
    node_features: int = 5
    job_features: int = 6
    num_executors: int = 50
    max_stages: int = 20  # stage slots per job (the env's max_stages)
    stage_position: bool = True  # a learned embedding of the stage's slot (heuristics break ties by it)
    wait_from_jobs: bool = True  # the "wait" score also sees each job (wait when no job wants more)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.LeakyReLU(), nn.Linear(h, o))


class DecimaGNN(nn.Module):
    def __init__(self, cfg: GNNConfig = GNNConfig()):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden
        self.node_in = _mlp(cfg.node_features, H, H)
        self.stage_pos = nn.Embedding(cfg.max_stages, H) if cfg.stage_position else None
        self.msg = _mlp(H, H, H)
        self.job = _mlp(H + cfg.job_features, H, H)
        self.glob = _mlp(H, H, H)
        self.stage_head = _mlp(3 * H + cfg.node_features, H, 1)
        self.wait_head = _mlp(H, H, 1)
        self.wait_job = _mlp(2 * H, H, 1) if cfg.wait_from_jobs else None
        self.limit_head = _mlp(2 * H, H, cfg.num_executors)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns masked stage logits (B, J·S + 1) and limit logits (B, J, E) (unmasked)."""
        x = obs["node_features"]  # (B, J, S, F)
        adj = obs["adjacency"].float()  # (B, J, S, S): [i, j] = i is a parent of j
        jobf = obs["job_features"]  # (B, J, G)
        B, J, S, _ = x.shape
        live = (x[..., 0] > 0) | (x[..., 2] > 0) | (x[..., 3] > 0)  # (B, J, S) stages with work left
        h0 = self.node_in(x)
        if self.stage_pos is not None:
            h0 = h0 + self.stage_pos.weight[:S]
        h0 = h0 * live[..., None]
        h = h0
        for _ in range(self.cfg.rounds):
            h = h0 + self.msg(adj @ h) * live[..., None]  # children -> parents
        present = jobf[..., 0:1]  # (B, J, 1)
        y = self.job(torch.cat([h.sum(2), jobf], -1)) * present  # (B, J, H)
        z = self.glob(y.sum(1))  # (B, H)
        stage_in = torch.cat([h, y[:, :, None].expand(-1, -1, S, -1), z[:, None, None].expand(-1, J, S, -1), x], -1)
        stage = self.stage_head(stage_in).reshape(B, J * S)
        wait = self.wait_head(z)
        if self.wait_job is not None:  # minus a soft maximum over jobs of how much each wants executors
            want = self.wait_job(torch.cat([y, z[:, None].expand(-1, J, -1)], -1))[..., 0]  # (B, J)
            wait = wait - torch.logsumexp(want.masked_fill(present[..., 0] == 0, -1e9), -1, keepdim=True)
        logits = torch.cat([stage, wait], -1)
        logits = logits.masked_fill(obs["stage_mask"] == 0, -1e9)
        limits = self.limit_head(torch.cat([y, z[:, None].expand(-1, J, -1)], -1))
        return logits, limits


def to_tensors(obs: dict, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    out = {k: torch.as_tensor(np.asarray(obs[k]), device=device) for k in OBS_KEYS}
    # add the batch axis to single observations
    if out["node_features"].dim() == 3:
        out = {k: v[None] for k, v in out.items()}
    out["node_features"] = out["node_features"].float()
    out["job_features"] = out["job_features"].float()
    return out


def trim(obs: dict, slots: np.ndarray | None = None):
    """Keep only the job slots up to the last present job (the rest are padding): the GNN's cost
    scales with the slots it sees. Stage-slot indices below the cut are unchanged; the wait action
    moves from ``J·S`` to ``K·S``. Returns the trimmed observation and the remapped ``slots``."""
    present = np.asarray(obs["job_features"])[..., 0] > 0
    K = int(np.flatnonzero(present.reshape(-1, present.shape[-1]).any(0)).max(initial=0)) + 1
    J, S = np.asarray(obs["node_features"]).shape[-3:-1]
    out = {k: np.asarray(obs[k])[..., :K, :, :] if k in ("node_features", "adjacency")
           else np.asarray(obs[k])[..., :K, :] if k in ("job_features", "limit_mask") else None for k in OBS_KEYS}
    mask = np.asarray(obs["stage_mask"])
    out["stage_mask"] = np.concatenate([mask[..., :K * S], mask[..., J * S:]], axis=-1)
    if slots is not None:
        slots = np.where(slots == J * S, K * S, slots)
    return out, slots


def action_logp(model: DecimaGNN, obs_t: dict[str, torch.Tensor], slots: torch.Tensor, limits: torch.Tensor):
    """Log-probabilities and entropies of (stage slot, limit-1) actions under ``model``."""
    logits, lim_logits = model(obs_t)
    dist = torch.distributions.Categorical(logits=logits)
    logp = dist.log_prob(slots)
    ent = dist.entropy()
    S = obs_t["node_features"].shape[2]
    J = obs_t["node_features"].shape[1]
    wait = slots == J * S
    job = torch.clamp(slots // S, max=J - 1)
    ll = lim_logits[torch.arange(len(slots)), job]  # (B, E)
    lmask = obs_t["limit_mask"][torch.arange(len(slots)), job]
    ll = ll.masked_fill(lmask == 0, -1e9)
    ldist = torch.distributions.Categorical(logits=ll)
    logp = logp + torch.where(wait, torch.zeros_like(logp), ldist.log_prob(limits))
    ent = ent + torch.where(wait, torch.zeros_like(ent), ldist.entropy())
    return logp, ent


class GNNScheduler(BatchPolicy):
    """The trained GNN as a :class:`~agents.base.Policy`: samples (``greedy=False``) or takes the mode."""

    name = "decima-gnn"

    def __init__(self, folder: str | Path | None = PRETRAINED, model: DecimaGNN | None = None, greedy: bool = True,
                 seed: int = 0):
        if model is None:
            model, self.meta = load_checkpoint(folder)
        self.model = model.eval()
        self.greedy = greedy
        self.gen = torch.Generator().manual_seed(seed)

    def reset(self, seed=None):
        super().reset(seed)
        if seed is not None:
            self.gen.manual_seed(int(seed))

    @torch.no_grad()
    def act(self, obs, info=None):
        J, S = np.asarray(obs["node_features"]).shape[:2]
        small, _ = trim(obs)
        o = to_tensors(small)
        logits, lim = self.model(o)
        if self.greedy:
            slot = int(logits[0].argmax())
        else:
            slot = int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=self.gen))
        K = o["node_features"].shape[1]
        if slot == K * S:
            return np.asarray([J * S, 0])
        ll = lim[0, slot // S].masked_fill(o["limit_mask"][0, slot // S] == 0, -1e9)
        limit = int(ll.argmax()) if self.greedy else int(torch.multinomial(torch.softmax(ll, -1), 1, generator=self.gen))
        return np.asarray([slot, limit])


def save_checkpoint(model: DecimaGNN, folder: str | Path, extra: dict) -> Path:
    return write_checkpoint(folder, model.state_dict(), "decima-gnn", model.cfg, extra)


def load_checkpoint(folder: str | Path = PRETRAINED) -> tuple[DecimaGNN, dict]:
    tensors, cfg, meta = read_checkpoint(folder, GNNConfig, "python -m agents.cjs_gnn --out DIR")
    model = DecimaGNN(cfg)
    model.load_state_dict(tensors)
    return model.eval(), meta


# ------------------------------------------------------------------------------------- training

@dataclass
class Args:
    out: str = "agents/pretrained/cjs_gnn"  # checkpoint folder
    jobs: int = 50  # jobs per training episode (shorter than the 200 of evaluation, as Decima's curriculum)
    imitate: str = "fair"  # the heuristic of the warm start: fair | wfair
    bc_episodes: int = 6  # episodes of that heuristic to imitate
    bc_epochs: int = 4
    iterations: int = 10  # REINFORCE iterations after the warm start
    rollouts: int = 4  # rollouts of one workload per iteration (time-based baseline)
    lr: float = 1e-3
    entropy: float = 0.01
    hidden: int = 32
    val_seeds: int = 2  # validation workloads to pick the checkpoint
    val_jobs: int = 100  # jobs per validation workload (200 at evaluation; shorter to keep training cheap)
    seed: int = 0
    threads: int = 0


def _stack(obs_list: list[dict], acts: np.ndarray):
    """Batch trimmed observations (each cut at its own last present job, see :func:`_rollout`): pad
    them to the batch's widest, and move each "wait" slot to the padded index."""
    K = max(o["job_features"].shape[0] for o in obs_list)
    S = obs_list[0]["node_features"].shape[1]
    out = {}
    for k in ("node_features", "adjacency", "job_features", "limit_mask"):
        out[k] = np.stack([np.pad(o[k], [(0, K - o[k].shape[0])] + [(0, 0)] * (o[k].ndim - 1)) for o in obs_list])
    out["stage_mask"] = np.stack([np.concatenate([np.pad(o["stage_mask"][:-1], (0, (K - o["job_features"].shape[0]) * S)),
                                                  o["stage_mask"][-1:]]) for o in obs_list])
    widths = np.asarray([o["job_features"].shape[0] for o in obs_list])
    slots = np.where(acts[:, 0] == widths * S, K * S, acts[:, 0])
    return to_tensors(out), torch.as_tensor(slots), torch.as_tensor(acts[:, 1])


def _rollout(env, policy, seed: int):
    """One episode; observations are kept trimmed to their present job slots (a full padded one is
    ~50 KB, most of it empty), actions remapped to match."""
    obs, info = env.reset(seed=seed)
    traj_obs, acts, rewards, times = [], [], [], []
    term = False
    while not term:
        a = policy.act(obs, info)
        small, slot = trim(obs, np.asarray([a[0]]))
        traj_obs.append(small)
        acts.append([int(slot[0]), int(a[1])])
        times.append(env.sim.now)
        obs, r, term, _, info = env.step(a)
        rewards.append(r)
    return traj_obs, np.asarray(acts), np.asarray(rewards), np.asarray(times), float(info["mean_jct_s"])


def _time_baseline(times: list[np.ndarray], rtgs: list[np.ndarray]) -> list[np.ndarray]:
    """Decima's baseline: for each rollout, the mean over rollouts of return-to-go at the same time."""
    out = []
    for t in times:
        b = np.mean([np.interp(t, tk, rk) for tk, rk in zip(times, rtgs)], axis=0)
        out.append(b)
    return out


def _mean_jct(model, env, seeds) -> float:
    pol = GNNScheduler(model=model, greedy=True)
    return float(np.mean([_rollout(env, pol, s)[4] for s in seeds]))


def train(args: Args, log=print, save_best=None) -> tuple[DecimaGNN, dict]:
    from agents import make_cjs_agent
    from envs.cjs import CJSConfig, CJSEnv

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = CJSEnv(CJSConfig(num_jobs=args.jobs))
    val_env = CJSEnv(CJSConfig(num_jobs=args.val_jobs))
    val_seeds = [2000 + i for i in range(args.val_seeds)]
    model = DecimaGNN(GNNConfig(hidden=args.hidden, num_executors=env.E))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    history = []
    # 1) behaviour cloning of a heuristic
    if args.imitate not in ("fair", "wfair"):
        raise SystemExit(f"--imitate {args.imitate!r}: use fair or wfair")
    obs_all, act_all = [], []
    for ep in range(args.bc_episodes):
        o, a, *_ = _rollout(env, make_cjs_agent(args.imitate), seed=10_000 + ep)
        obs_all += o
        act_all.append(a)
    acts = np.concatenate(act_all)
    n = len(obs_all)
    for epoch in range(args.bc_epochs):
        perm = np.random.default_rng(epoch).permutation(n)
        total = 0.0
        for i in range(0, n, 256):
            idx = perm[i:i + 256]
            o, sl, li = _stack([obs_all[j] for j in idx], acts[idx])
            lp, _ = action_logp(model, o, sl, li)
            loss = -lp.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        log(f"bc epoch {epoch + 1}: nll {total / n:.3f} ({n} decisions)")
    best = _mean_jct(model, val_env, val_seeds)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history.append({"stage": "bc", "val_mean_jct_s": best})
    log(f"after imitation: validation mean JCT {best:.1f} s")
    # 2) REINFORCE with the time-based baseline
    for it in range(args.iterations):
        pol = GNNScheduler(model=model, greedy=False, seed=args.seed * 1000 + it)
        seed = 20_000 + it
        rolls = [_rollout(env, pol, seed) for _ in range(args.rollouts)]
        rtgs = [np.cumsum(r[2][::-1])[::-1] for r in rolls]
        base = _time_baseline([r[3] for r in rolls], rtgs)
        adv = np.concatenate([g - b for g, b in zip(rtgs, base)])
        adv = adv / (adv.std() + 1e-8)
        obs_list = [o for r in rolls for o in r[0]]
        acts = np.concatenate([r[1] for r in rolls])
        opt.zero_grad()
        for i in range(0, len(obs_list), 512):
            o, sl, li = _stack(obs_list[i:i + 512], acts[i:i + 512])
            lp, ent = action_logp(model, o, sl, li)
            a = torch.as_tensor(adv[i:i + 512], dtype=torch.float32)
            loss = -(lp * a).sum() / len(obs_list) - args.entropy * ent.sum() / len(obs_list)
            loss.backward()
        opt.step()
        val = _mean_jct(model, val_env, val_seeds)
        train_jct = float(np.mean([r[4] for r in rolls]))
        history.append({"stage": "pg", "iteration": it + 1, "train_mean_jct_s": train_jct, "val_mean_jct_s": val})
        log(f"pg {it + 1}: train JCT {train_jct:.1f} s, validation JCT {val:.1f} s")
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
            if save_best is not None:  # a long run can be stopped at any time and keep its best model
                save_best(model, {"val_mean_jct_s": best, "history": history, "val_seeds": val_seeds,
                                  "train_seconds": time.perf_counter() - t0, "partial": True})
    model.load_state_dict(best_state)
    return model, {"val_mean_jct_s": best, "history": history, "train_seconds": time.perf_counter() - t0,
                   "val_seeds": val_seeds}


def main(argv=None) -> None:
    args = parse_dataclass_args(Args, argv, "python -m agents.cjs_gnn", __doc__)
    from distill.pool import _code_version

    def save_best(model, metrics):
        save_checkpoint(model, args.out, {"args": asdict(args), "metrics": metrics, "code_version": _code_version(),
                                          "created": time.strftime("%Y-%m-%d %H:%M:%S")})

    model, metrics = train(args, save_best=save_best)
    save_checkpoint(model, args.out, {"args": asdict(args), "metrics": metrics, "code_version": _code_version(),
                                      "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"wrote {args.out}: validation mean JCT {metrics['val_mean_jct_s']:.1f} s")


if __name__ == "__main__":
    main()
