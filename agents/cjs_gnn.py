"""Decima-style GNN scheduler for ``mamba4net/CJS-v0`` and its training (imitation + DAgger + REINFORCE).

Model (after Decima, Mao et al. SIGCOMM 2019): stage features are embedded, then messages flow from
child stages to parents for ``rounds`` steps (``h = h0 + f(A·h)``: a parent sees its descendants'
work, a learned critical path); a job summary pools its stages with the job features; a global
summary pools the jobs. The stage head scores every stage slot (masked softmax, plus a "wait" score
from the global summary); the limit head scores parallelism limits 1..E for the chosen stage's job
(masked to limits above its executors).

Training (``python -m agents.cjs_gnn``): behaviour cloning of a heuristic (``--imitate fair|wfair``)
for a warm start, DAgger rounds (``--dagger-rounds``: the GNN schedules, the heuristic labels the
states it visits, they join the training set — a clone alone drifts into states the heuristic never
shows it), then REINFORCE with Decima's time-based baseline — several rollouts of one workload, each decision's
return-to-go compared with the others' at the same wall-clock time — and an entropy bonus, on shorter
episodes (``--jobs``). The checkpoint kept is the best mean JCT on validation seeds. ``--init DIR``
continues from a checkpoint (no cloning).

The pieces serve every CJS scheduler with this module's forward contract (the LLM teacher and Mamba
student of :mod:`agents.cjs_llm` too): :class:`GNNScheduler` (batched decisions), :func:`lockstep`
(workloads side by side, DAgger labelling), :class:`DecisionSet` and :func:`imitate` (cloning, DAgger,
optional distillation term).
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


class DAGEncoder(nn.Module):
    """Stage embeddings with child→parent message passing, and a summary per job (Decima's first two
    levels). Shared by :class:`DecimaGNN` and the LLM / Mamba schedulers of :mod:`agents.cjs_llm`."""

    def __init__(self, hidden: int, rounds: int, node_features: int, job_features: int, max_stages: int,
                 stage_position: bool = True):
        super().__init__()
        H = hidden
        self.rounds = rounds
        self.node_in = _mlp(node_features, H, H)
        self.stage_pos = nn.Embedding(max_stages, H) if stage_position else None
        self.msg = _mlp(H, H, H)
        self.job = _mlp(H + job_features, H, H)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage embeddings (B, J, S, H) and job summaries (B, J, H) (zero for absent jobs)."""
        x = obs["node_features"]  # (B, J, S, F)
        adj = obs["adjacency"].to(x.dtype)  # (B, J, S, S): [i, j] = i is a parent of j
        jobf = obs["job_features"]  # (B, J, G)
        S = x.shape[2]
        live = (x[..., 0] > 0) | (x[..., 2] > 0) | (x[..., 3] > 0)  # (B, J, S) stages with work left
        h0 = self.node_in(x)
        if self.stage_pos is not None:
            h0 = h0 + self.stage_pos.weight[:S]
        h0 = h0 * live[..., None]
        h = h0
        for _ in range(self.rounds):
            h = h0 + self.msg(adj @ h) * live[..., None]  # children -> parents
        y = self.job(torch.cat([h.sum(2), jobf], -1)) * jobf[..., 0:1]  # absent jobs -> 0
        return h, y


class DecimaGNN(nn.Module):
    def __init__(self, cfg: GNNConfig = GNNConfig()):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden
        self.enc = DAGEncoder(H, cfg.rounds, cfg.node_features, cfg.job_features, cfg.max_stages, cfg.stage_position)
        self.glob = _mlp(H, H, H)
        self.stage_head = _mlp(3 * H + cfg.node_features, H, 1)
        self.wait_head = _mlp(H, H, 1)
        self.wait_job = _mlp(2 * H, H, 1) if cfg.wait_from_jobs else None
        self.limit_head = _mlp(2 * H, H, cfg.num_executors)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns masked stage logits (B, J·S + 1) and limit logits (B, J, E) (unmasked)."""
        x = obs["node_features"]
        B, J, S, _ = x.shape
        h, y = self.enc(obs)
        present = obs["job_features"][..., 0:1]  # (B, J, 1)
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


def action_logp(model: nn.Module, obs_t: dict[str, torch.Tensor], slots: torch.Tensor, limits: torch.Tensor,
                out: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Log-probabilities and entropies of (stage slot, limit-1) actions under ``model`` (or under its
    already computed ``out`` = (stage logits, limit logits))."""
    logits, lim_logits = model(obs_t) if out is None else out
    dist = torch.distributions.Categorical(logits=logits)
    logp = dist.log_prob(slots)
    ent = dist.entropy()
    ll = _limit_logits_at(lim_logits, obs_t, slots)
    wait = slots == obs_t["node_features"].shape[1] * obs_t["node_features"].shape[2]
    ldist = torch.distributions.Categorical(logits=ll)
    logp = logp + torch.where(wait, torch.zeros_like(logp), ldist.log_prob(limits))
    ent = ent + torch.where(wait, torch.zeros_like(ent), ldist.entropy())
    return logp, ent


def _limit_logits_at(lim_logits: torch.Tensor, obs_t: dict[str, torch.Tensor], slots: torch.Tensor) -> torch.Tensor:
    """The masked limit logits (B, E) of each row's chosen stage's job (any job for "wait")."""
    J, S = obs_t["node_features"].shape[1:3]
    rows = torch.arange(len(slots), device=slots.device)
    job = torch.clamp(slots // S, max=J - 1)
    return lim_logits[rows, job].masked_fill(obs_t["limit_mask"][rows, job] == 0, -1e9)


class GNNScheduler(BatchPolicy):
    """A trained scheduler as a :class:`~agents.base.Policy`: samples (``greedy=False``) or takes the
    mode. Any model with :class:`DecimaGNN`'s forward contract works (the GNN, or the LLM teacher and
    Mamba student of :mod:`agents.cjs_llm`); :meth:`act_list` decides for several environments in one
    forward pass (observations trimmed to their present jobs, padded to the widest)."""

    name = "decima-gnn"

    def __init__(self, folder: str | Path | None = PRETRAINED, model: nn.Module | None = None, greedy: bool = True,
                 seed: int = 0, device: str | torch.device = "cpu", forward=None, name: str | None = None):
        if model is None:
            model, self.meta = load_checkpoint(folder)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.greedy = greedy
        self.forward = forward or self.model  # e.g. a CUDA-graph runner around the model
        self.gen = torch.Generator().manual_seed(seed)
        if name:
            self.name = name

    def reset(self, seed=None):
        super().reset(seed)
        if seed is not None:
            self.gen.manual_seed(int(seed))

    def act(self, obs, info=None):
        return self.act_list([obs])[0]

    @torch.no_grad()
    def act_list(self, obs_list: list[dict], infos=None) -> list[np.ndarray]:
        J, S = np.asarray(obs_list[0]["node_features"]).shape[:2]
        arrays, _ = pad_stack([trim(o)[0] for o in obs_list])
        K = arrays["job_features"].shape[1]
        o = to_tensors(arrays, self.device)
        logits, lim = self.forward(o)
        logits = logits.float()
        if self.greedy:
            slot = logits.argmax(-1)
        else:
            slot = torch.multinomial(torch.softmax(logits.cpu(), -1), 1, generator=self.gen)[:, 0].to(logits.device)
        rows = torch.arange(len(obs_list), device=logits.device)
        job = torch.clamp(slot // S, max=K - 1)
        ll = lim[rows, job].float().masked_fill(o["limit_mask"][rows, job] == 0, -1e9)
        if self.greedy:
            limit = ll.argmax(-1)
        else:
            limit = torch.multinomial(torch.softmax(ll.cpu(), -1), 1, generator=self.gen)[:, 0]
        slot, limit = slot.cpu().numpy(), limit.cpu().numpy()
        return [np.asarray([J * S, 0]) if sl == K * S else np.asarray([sl, li]) for sl, li in zip(slot, limit)]


def save_checkpoint(model: DecimaGNN, folder: str | Path, extra: dict) -> Path:
    return write_checkpoint(folder, {k: v.detach().cpu() for k, v in model.state_dict().items()}, "decima-gnn",
                            model.cfg, extra)


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
    imitate: str = "fair"  # the expert cloned and labelling DAgger: fair | wfair | lookahead (agents.cjs_lookahead)
    pool_file: str = ""  # clone this recorded pool (python -m agents.cjs_lookahead) instead, also after --init
    bc_episodes: int = 6  # episodes of that heuristic to imitate
    bc_epochs: int = 4
    dagger_rounds: int = 0  # rounds of: GNN rollouts labelled by the heuristic, then refit on all data
    dagger_episodes: int = 4  # episodes rolled out per round (side by side, one batched forward per decision)
    dagger_epochs: int = 3  # epochs over the aggregated data per round
    dagger_beta: float = 0.5  # round r follows the heuristic at each decision with probability beta^r
    init: str = ""  # start from this checkpoint folder (its config) instead of a fresh model; skips cloning
    iterations: int = 10  # REINFORCE iterations after the warm start
    rollouts: int = 4  # rollouts of one workload per iteration (time-based baseline)
    lr: float = 1e-3
    entropy: float = 0.01
    hidden: int = 32
    val_seeds: int = 2  # validation workloads to pick the checkpoint
    val_jobs: int = 100  # jobs per validation workload (200 at evaluation; shorter to keep training cheap)
    seed: int = 0
    threads: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"


def pad_stack(obs_list: list[dict]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Batch trimmed observations (each cut at its own last present job): pad them to the batch's
    widest (absent jobs, the wait option moved to the end); also returns each one's width."""
    widths = np.asarray([o["job_features"].shape[0] for o in obs_list])
    K = int(widths.max())
    S = obs_list[0]["node_features"].shape[1]
    B = len(obs_list)
    out = {}
    for k in ("node_features", "adjacency", "job_features", "limit_mask"):
        first = np.asarray(obs_list[0][k])
        out[k] = buf = np.zeros((B, K, *first.shape[1:]), dtype=first.dtype)  # absent jobs are zeros
        for i, o in enumerate(obs_list):
            buf[i, : o[k].shape[0]] = o[k]
    mask = obs_list[0]["stage_mask"]
    out["stage_mask"] = sm = np.zeros((B, K * S + 1), dtype=mask.dtype)
    for i, (o, w) in enumerate(zip(obs_list, widths)):
        sm[i, : w * S] = o["stage_mask"][:-1]
        sm[i, -1] = o["stage_mask"][-1]
    return out, widths


def _stack(obs_list: list[dict], acts: np.ndarray, device="cpu"):
    """:func:`pad_stack` as tensors, with each action's "wait" slot moved to the padded index."""
    out, widths = pad_stack(obs_list)
    K = out["job_features"].shape[1]
    S = out["node_features"].shape[2]
    slots = np.where(acts[:, 0] == widths * S, K * S, acts[:, 0])
    return to_tensors(out, device), torch.as_tensor(slots, device=device), torch.as_tensor(acts[:, 1], device=device)


def jct_so_far(sim) -> np.ndarray:
    """Per-job JCT of an episode cut short: the finished jobs', and the running ones' time so far."""
    running = [(sim.now - sim.jobs[j].arrival_ms) / 1000.0 for j in sim.active]
    return np.concatenate([sim.jct_s(), running])


def lockstep(envs, seeds, policy, expert=None, follow: float = 0.0, record: bool = True,
             max_decisions: int | None = None, on_done=None) -> list[dict]:
    """Run one episode per env side by side: each round, every unfinished env asks ``policy`` (one
    batched :meth:`GNNScheduler.act_list` call when it has one) and steps. With ``expert``, the
    recorded action is the expert's label of each state and the executed one is the expert's with
    probability ``follow``, else the policy's (DAgger; the coin is seeded by the workload seed). A
    policy or expert with ``act_envs(envs)`` reads the environments themselves (the lookahead expert).
    Returns per env: trimmed observations, actions (slot remapped to the trimmed layout, limit − 1),
    rewards, decision times, mean JCT, per-job JCT, makespan and the number of decisions. An episode
    past ``max_decisions`` is cut (``truncated``; its mean JCT then counts the jobs still running up to
    now — a lower bound): a poor scheduler can otherwise take hours of simulated time. ``on_done(i,
    result)`` is called as each env's episode ends (e.g. to save a long run's finished workloads)."""
    def ask(pol, active):
        if hasattr(pol, "act_envs"):  # an expert that reads the simulator (agents.cjs_lookahead.Lookahead)
            return pol.act_envs([envs[i] for i in active])
        obs_list, infos = [obs[i] for i in active], [info[i] for i in active]
        if hasattr(pol, "act_list"):
            return pol.act_list(obs_list, infos)
        return [pol.act(o, i) for o, i in zip(obs_list, infos)]

    obs, info = zip(*[e.reset(seed=int(s)) for e, s in zip(envs, seeds)])
    obs, info = list(obs), list(info)
    coins = [np.random.default_rng(int(s)) for s in seeds]
    out = [{"obs": [], "acts": [], "rewards": [], "times": []} for _ in envs]
    active = list(range(len(envs)))
    while active:
        acts = ask(policy, active)
        labels = acts if expert is None else ask(expert, active)
        for i, a, label in zip(active, acts, labels):
            if expert is not None and coins[i].random() < follow:
                a = label
            t = out[i]
            if record:
                small, slot = trim(obs[i], np.asarray([label[0]]))
                t["obs"].append(small)
                t["acts"].append([int(slot[0]), int(label[1])])
            t["times"].append(envs[i].sim.now)
            obs[i], r, term, _, info[i] = envs[i].step(a)
            t["rewards"].append(r)
            if term:
                t.update(mean_jct_s=float(info[i]["mean_jct_s"]), jct_s=envs[i].sim.jct_s(),
                         makespan_s=envs[i].sim.makespan_s(), decisions=len(t["rewards"]), truncated=False)
            elif max_decisions is not None and len(t["rewards"]) >= max_decisions:
                sim = envs[i].sim
                jct = jct_so_far(sim)
                t.update(mean_jct_s=float(jct.mean()), jct_s=jct, makespan_s=sim.makespan_s(),
                         decisions=len(t["rewards"]), truncated=True)
            if on_done is not None and "mean_jct_s" in t:
                on_done(i, t)
        active = [i for i in active if "mean_jct_s" not in out[i]]
    for t in out:
        t["acts"] = np.asarray(t["acts"], dtype=np.int64).reshape(-1, 2)
        t["rewards"], t["times"] = np.asarray(t["rewards"]), np.asarray(t["times"])
    return out


def _time_baseline(times: list[np.ndarray], rtgs: list[np.ndarray]) -> list[np.ndarray]:
    """Decima's baseline: for each rollout, the mean over rollouts of return-to-go at the same time."""
    out = []
    for t in times:
        b = np.mean([np.interp(t, tk, rk) for tk, rk in zip(times, rtgs)], axis=0)
        out.append(b)
    return out


class DecisionSet:
    """Labelled decisions kept as stacked tensors on the training device, in buckets by job-slot width
    (rounded up to ``step``): a minibatch is a slice of one bucket, with no per-batch host work."""

    def __init__(self, device="cpu", step: int = 8):
        self.device, self.step = torch.device(device), step
        self.buckets: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return sum(len(b["slots"]) for b in self.buckets.values())

    def add(self, obs_list: list[dict], acts: np.ndarray) -> None:
        widths = np.asarray([o["job_features"].shape[0] for o in obs_list])
        rounded = -(-widths // self.step) * self.step
        for w in np.unique(rounded):
            idx = np.flatnonzero(rounded == w)
            group = [obs_list[i] for i in idx]
            # pad the first to width w so that the whole group stacks to w
            first = group[0]
            pad = int(w) - first["job_features"].shape[0]
            if pad:
                S = first["node_features"].shape[1]
                first = {k: (np.pad(v, [(0, pad)] + [(0, 0)] * (v.ndim - 1)) if k != "stage_mask"
                             else np.concatenate([np.pad(v[:-1], (0, pad * S)), v[-1:]])) for k, v in first.items()}
                group = [first] + group[1:]
                a = acts[idx].copy()
                if a[0, 0] == widths[idx[0]] * S:  # its wait slot moves to the padded index
                    a[0, 0] = int(w) * S
            else:
                a = acts[idx]
            o, sl, li = _stack(group, a, self.device)
            new = {**o, "slots": sl, "limits": li}
            old = self.buckets.get(int(w))
            self.buckets[int(w)] = new if old is None else {k: torch.cat([old[k], new[k]]) for k in new}

    def batches(self, batch: int, rng: np.random.Generator):
        """Shuffled minibatches, each from one bucket, in a shuffled order over buckets."""
        plan = []
        for w, b in self.buckets.items():
            perm = torch.as_tensor(rng.permutation(len(b["slots"])), device=self.device)
            plan += [(w, perm[i:i + batch]) for i in range(0, len(perm), batch)]
        for j in rng.permutation(len(plan)):
            w, idx = plan[j]
            b = self.buckets[w]
            o = {k: b[k][idx] for k in OBS_KEYS}
            yield o, b["slots"][idx], b["limits"][idx]


def _fit(model, opt, data: DecisionSet, epochs: int, seed: int, log, tag: str, batch: int = 256, teacher: nn.Module | None = None, kl_beta: float = 0.5,
         temperature: float = 2.0, grad_clip: float = 1.0) -> float:
    """Maximum likelihood of ``acts`` (slot, limit − 1) on trimmed observations. With ``teacher``, plus
    Mamba4Net's task-focused distillation term ``β·T²·KL(π_teacher ‖ π_model)`` at temperature ``T``,
    on the stage distribution and on the limit distribution of the labelled stage's job."""
    import torch.nn.functional as F

    n = len(data)
    mean = float("nan")
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for o, sl, li in data.batches(batch, np.random.default_rng(seed * 1000 + epoch)):
            out = model(o)
            lp, _ = action_logp(model, o, sl, li, out=out)
            loss = -lp.mean()
            if teacher is not None and kl_beta > 0:
                with torch.no_grad():
                    t_stage, t_lim = teacher(o)
                    t_lim = _limit_logits_at(t_lim.float(), o, sl)
                wait = (sl == o["node_features"].shape[1] * o["node_features"].shape[2]).float()
                T = temperature

                def kl(s_logits, t_logits):
                    return F.kl_div(F.log_softmax(s_logits.float() / T, -1), F.log_softmax(t_logits.float() / T, -1),
                                    log_target=True, reduction="none").sum(-1)

                s_lim = _limit_logits_at(out[1], o, sl)
                kd = kl(out[0], t_stage) + (1 - wait) * kl(s_lim, t_lim)
                loss = loss + kl_beta * T * T * kd.mean()
            opt.zero_grad()
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
            opt.step()
            total += float(loss.detach()) * len(sl)
        mean = total / n
        log(f"{tag} epoch {epoch + 1}: loss {mean:.3f} ({n} decisions)")
    model.eval()
    return mean


def _envs(jobs: int, n: int):
    from envs.cjs import CJSConfig, CJSEnv

    return [CJSEnv(CJSConfig(num_jobs=jobs)) for _ in range(n)]


DECISIONS_PER_JOB_CAP = 600  # ~4× what wfair needs per job (~130): past it, an episode is cut


def mean_jct(model, envs, seeds, device="cpu", forward=None, log=None, cap_per_job: int = DECISIONS_PER_JOB_CAP) -> float:
    """Mean JCT of ``model`` (greedy) over ``seeds``, one env per seed, run in lockstep; ``inf`` when
    an episode needs over ``cap_per_job`` decisions per job: such a model is not kept."""
    pol = GNNScheduler(model=model, greedy=True, device=device, forward=forward)
    cap = cap_per_job * envs[0].config.num_jobs
    trajs = lockstep(envs, seeds, pol, record=False, max_decisions=cap)
    value = float(np.mean([t["mean_jct_s"] for t in trajs]))
    if any(t["truncated"] for t in trajs):
        if log is not None:
            log(f"validation cut after {cap} decisions (mean JCT so far ≥ {value:.1f} s)")
        return float("inf")
    return value


def imitate(model, opt, *, pool_expert, labeler, jobs: int, bc_episodes: int, bc_epochs: int, rounds: int,
            episodes: int, epochs: int, beta: float, val_seeds, val_jobs: int, device="cpu", teacher=None,
            kl_beta: float = 0.5, temperature: float = 2.0, batch: int = 256, forward=None, log=print,
            save_best=None, history: list | None = None, cap_per_job: int = DECISIONS_PER_JOB_CAP,
            validate_start: bool = True, pool_trajs: list[dict] | None = None):
    """Behaviour cloning on ``pool_expert``'s episodes, then DAgger rounds: ``model`` schedules
    ``episodes`` workloads side by side (following ``labeler`` at each decision with probability
    ``beta^round``), ``labeler`` labels every state visited, the data aggregate and ``model`` is refit
    for ``epochs``. ``bc_episodes = 0`` skips cloning (a model that already schedules). ``pool_trajs``
    (e.g. :func:`agents.cjs_lookahead.replay_pool`) replaces the pool scheduler's episodes. Episodes are cut
    past ``cap_per_job`` decisions per job (:func:`lockstep`). After each
    stage the validation mean JCT (``val_seeds`` × ``val_jobs`` jobs) decides the checkpoint kept.
    Returns the best validation JCT; ``model`` holds its weights."""
    history = [] if history is None else history
    t0 = time.perf_counter()
    data = DecisionSet(device)
    val_envs = _envs(val_jobs, len(val_seeds))
    fit = dict(batch=batch, teacher=teacher, kl_beta=kl_beta, temperature=temperature)
    if pool_trajs is None and bc_episodes:
        pool_trajs = lockstep(_envs(jobs, bc_episodes), [10_000 + i for i in range(bc_episodes)], pool_expert)
    cloned = bool(pool_trajs)
    if cloned:
        for t in pool_trajs:
            data.add(t["obs"], t["acts"])
        log(f"pool: {len(data)} decisions of {len(pool_trajs)} workloads ({time.perf_counter() - t0:.0f} s)")
        _fit(model, opt, data, bc_epochs, 0, log, "bc", **fit)
    best = mean_jct(model, val_envs, val_seeds, device, forward, log, cap_per_job) if validate_start else float("inf")
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history.append({"stage": "bc" if cloned else "init", "val_mean_jct_s": best if validate_start else None,
                    "decisions": len(data), "seconds": time.perf_counter() - t0})
    log(f"{'after imitation' if cloned else 'initial'}: validation mean JCT "
        f"{f'{best:.2f} s' if validate_start else 'not measured'} ({time.perf_counter() - t0:.0f} s)")
    if save_best is not None and validate_start:
        save_best(model, {"val_mean_jct_s": best, "history": history, "partial": True})
    for rnd in range(1, rounds + 1):
        pol = GNNScheduler(model=model, greedy=True, device=device, forward=forward)
        follow = beta ** rnd
        seeds = [11_000 + rnd * 100 + i for i in range(episodes)]
        trajs = lockstep(_envs(jobs, episodes), seeds, pol, expert=labeler, follow=follow,
                         max_decisions=cap_per_job * jobs)
        for t in trajs:
            data.add(t["obs"], t["acts"])
        log(f"dagger {rnd}: {sum(t['decisions'] for t in trajs)} decisions rolled out ({time.perf_counter() - t0:.0f} s)")
        loss = _fit(model, opt, data, epochs, rnd, log, f"dagger {rnd}", **fit)
        val = mean_jct(model, val_envs, val_seeds, device, forward, log, cap_per_job)
        roll = float(np.mean([t["mean_jct_s"] for t in trajs]))
        history.append({"stage": "dagger", "round": rnd, "follow": follow, "rollout_mean_jct_s": roll, "loss": loss,
                        "decisions": len(data), "val_mean_jct_s": val, "seconds": time.perf_counter() - t0})
        log(f"dagger {rnd}: rollouts JCT {roll:.2f} s (labeler followed {follow:.2f}), validation JCT {val:.2f} s "
            f"({time.perf_counter() - t0:.0f} s)")
        if val < best or (rnd == 1 and not validate_start):
            best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
            if save_best is not None:  # a long run can be stopped at any time and keep its best model
                save_best(model, {"val_mean_jct_s": best, "history": history, "partial": True})
    model.load_state_dict(best_state)
    return best


def train(args: Args, log=print, save_best=None) -> tuple[DecimaGNN, dict]:
    from agents import make_cjs_agent

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    val_seeds = [2000 + i for i in range(args.val_seeds)]
    if args.init:
        model, _ = load_checkpoint(args.init)
    else:
        model = DecimaGNN(GNNConfig(hidden=args.hidden))
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    history = []
    if args.imitate not in ("fair", "wfair", "lookahead"):
        raise SystemExit(f"--imitate {args.imitate!r}: use fair, wfair or lookahead")
    if args.imitate == "lookahead":  # the clairvoyant expert over wfair (slow: ~50 ms per labelled decision)
        from .cjs_lookahead import Lookahead

        expert = Lookahead()
    else:
        expert = make_cjs_agent(args.imitate)
    # 1) behaviour cloning of a heuristic, then DAgger rounds labelled by it
    pool_trajs = None
    if args.pool_file:
        from .cjs_lookahead import replay_pool

        pool_trajs = replay_pool(args.pool_file)
    best = imitate(model, opt, pool_expert=expert, labeler=expert, jobs=args.jobs,
                   bc_episodes=0 if args.init else args.bc_episodes, bc_epochs=args.bc_epochs,
                   rounds=args.dagger_rounds, episodes=args.dagger_episodes, epochs=args.dagger_epochs,
                   beta=args.dagger_beta, val_seeds=val_seeds, val_jobs=args.val_jobs, device=device, log=log,
                   save_best=save_best, history=history, pool_trajs=pool_trajs)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    val_envs = _envs(args.val_jobs, len(val_seeds))
    # 2) REINFORCE with the time-based baseline
    for it in range(args.iterations):
        pol = GNNScheduler(model=model, greedy=False, seed=args.seed * 1000 + it, device=device)
        rolls = lockstep(_envs(args.jobs, args.rollouts), [20_000 + it] * args.rollouts, pol,
                         max_decisions=DECISIONS_PER_JOB_CAP * args.jobs)
        rtgs = [np.cumsum(r["rewards"][::-1])[::-1] for r in rolls]
        base = _time_baseline([r["times"] for r in rolls], rtgs)
        adv = np.concatenate([g - b for g, b in zip(rtgs, base)])
        adv = adv / (adv.std() + 1e-8)
        obs_list = [o for r in rolls for o in r["obs"]]
        acts = np.concatenate([r["acts"] for r in rolls])
        model.train()
        opt.zero_grad()
        for i in range(0, len(obs_list), 512):
            o, sl, li = _stack(obs_list[i:i + 512], acts[i:i + 512], device)
            lp, ent = action_logp(model, o, sl, li)
            a = torch.as_tensor(adv[i:i + 512], dtype=torch.float32, device=device)
            loss = -(lp * a).sum() / len(obs_list) - args.entropy * ent.sum() / len(obs_list)
            loss.backward()
        opt.step()
        model.eval()
        val = mean_jct(model, val_envs, val_seeds, device, log=log)
        train_jct = float(np.mean([r["mean_jct_s"] for r in rolls]))
        history.append({"stage": "pg", "iteration": it + 1, "train_mean_jct_s": train_jct, "val_mean_jct_s": val})
        log(f"pg {it + 1}: train JCT {train_jct:.2f} s, validation JCT {val:.2f} s")
        if val < best:
            best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
            if save_best is not None:
                save_best(model, {"val_mean_jct_s": best, "history": history, "partial": True})
    model.load_state_dict(best_state)
    return model.cpu().eval(), {"val_mean_jct_s": best, "history": history,
                                "train_seconds": time.perf_counter() - t0, "val_seeds": val_seeds}


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
