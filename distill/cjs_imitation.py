"""Imitation, DAgger and REINFORCE for CJS schedulers with the :class:`agents.cjs_gnn.ModelScheduler`
forward contract (the Decima GNN, the LLM teacher, the Mamba student).

    python -m distill.cjs gnn [--imitate fair|wfair|fifo] [--dagger-rounds 4] [--iterations 10] --out DIR

GNN training: behaviour cloning of a heuristic (``--imitate``) for a warm start, DAgger rounds
(``--dagger-rounds``: the GNN schedules, the heuristic labels the states it visits, they join the
training set — a clone alone drifts into states the heuristic never shows it), then REINFORCE with
Decima's time-based baseline — several rollouts of one workload, each decision's return-to-go
compared with the others' at the same wall-clock time — and an entropy bonus, on shorter episodes
(``--jobs``). The checkpoint kept is the best mean JCT on validation seeds (every ``--val-every``
iterations). ``--init DIR`` continues from a checkpoint (no cloning). ``--workers N`` runs the rollouts and
validation episodes in N CPU processes (a GPU host's cores; the updates stay on ``--device``);
``--time-budget-s`` starts no iteration past that many seconds (a job with a wall-clock limit).
:func:`imitate` (cloning + DAgger, optional distillation term) also trains the LLM teacher and the Mamba
student (:mod:`distill.cjs_llm`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from agents.checkpoint import parse_dataclass_args
from agents.cjs_gnn import OBS_KEYS, DecimaGNN, GNNConfig, ModelScheduler, load_checkpoint, pad_stack, \
    save_checkpoint, to_tensors
from evaluation.rollout import DECISIONS_PER_JOB_CAP, batched_rollout, make_envs, mean_jct


@dataclass
class GNNTraining:
    out: str = "agents/pretrained/cjs_gnn"  # checkpoint folder
    jobs: int = 50  # jobs per training episode (shorter than the 200 of evaluation, as Decima's curriculum)
    imitate: str = "fair"  # the heuristic cloned and labelling DAgger: fair | wfair | fifo
    pool_file: str = ""  # clone this recorded pool (python -m distill.cjs pool) instead, also after --init
    bc_episodes: int = 6  # episodes of that heuristic to imitate
    bc_epochs: int = 4
    dagger_rounds: int = 0  # rounds of: GNN rollouts labelled by the heuristic, then refit on all data
    dagger_episodes: int = 4  # episodes rolled out per round (side by side, one batched forward per decision)
    dagger_epochs: int = 3  # epochs over the aggregated data per round
    dagger_beta: float = 0.5  # round r follows the heuristic at each decision with probability beta^r
    init: str = ""  # start from this checkpoint folder (its config) instead of a fresh model; skips cloning
    iterations: int = 10  # REINFORCE iterations after the warm start
    rollouts: int = 4  # rollouts of one workload per iteration (time-based baseline)
    val_every: int = 1  # validate (and maybe keep the weights) every this many iterations
    time_budget_s: float = 0.0  # > 0: no REINFORCE iteration starts past this many seconds of training
    workers: int = 0  # >1: rollouts and validation episodes in this many CPU processes (one episode each)
    lr: float = 1e-3
    entropy: float = 0.01
    hidden: int = 32
    val_seeds: int = 2  # validation workloads to pick the checkpoint
    val_jobs: int = 100  # jobs per validation workload (200 at evaluation; shorter to keep training cheap)
    seed: int = 0
    threads: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"

def _stack(obs_list: list[dict], acts: np.ndarray, device="cpu"):
    """:func:`pad_stack` as tensors, with each action's "wait" slot moved to the padded index."""
    out, widths = pad_stack(obs_list)
    K = out["job_features"].shape[1]
    S = out["node_features"].shape[2]
    slots = np.where(acts[:, 0] == widths * S, K * S, acts[:, 0])
    return to_tensors(out, device), torch.as_tensor(slots, device=device), torch.as_tensor(acts[:, 1], device=device)

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

def imitate(model, opt, *, pool_expert, labeler, jobs: int, bc_episodes: int, bc_epochs: int, rounds: int,
            episodes: int, epochs: int, beta: float, val_seeds, val_jobs: int, device="cpu", teacher=None,
            kl_beta: float = 0.5, temperature: float = 2.0, batch: int = 256, forward=None, log=print,
            save_best=None, history: list | None = None, cap_per_job: int = DECISIONS_PER_JOB_CAP,
            validate_start: bool = True, pool_trajs: list[dict] | None = None):
    """Behaviour cloning on ``pool_expert``'s episodes, then DAgger rounds: ``model`` schedules
    ``episodes`` workloads side by side (following ``labeler`` at each decision with probability
    ``beta^round``), ``labeler`` labels every state visited, the data aggregate and ``model`` is refit
    for ``epochs``. ``bc_episodes = 0`` skips cloning (a model that already schedules). ``pool_trajs``
    (e.g. :func:`distill.cjs_pool.replay_pool`) replaces the pool scheduler's episodes. Episodes are cut
    past ``cap_per_job`` decisions per job (:func:`batched_rollout`). After each
    stage the validation mean JCT (``val_seeds`` × ``val_jobs`` jobs) decides the checkpoint kept.
    Returns the best validation JCT; ``model`` holds its weights."""
    history = [] if history is None else history
    t0 = time.perf_counter()
    data = DecisionSet(device)
    val_envs = make_envs(val_jobs, len(val_seeds))
    fit = dict(batch=batch, teacher=teacher, kl_beta=kl_beta, temperature=temperature)
    if pool_trajs is None and bc_episodes:
        pool_trajs = batched_rollout(make_envs(jobs, bc_episodes), [10_000 + i for i in range(bc_episodes)], pool_expert)
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
        pol = ModelScheduler(model=model, greedy=True, device=device, forward=forward)
        follow = beta ** rnd
        seeds = [11_000 + rnd * 100 + i for i in range(episodes)]
        trajs = batched_rollout(make_envs(jobs, episodes), seeds, pol, expert=labeler, follow=follow,
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


def keep_best(model, val: float, best: float, best_state: dict, history: list, save_best=None) -> tuple[float, dict]:
    """``(best, best_state)`` after a validation ``val`` of ``model``: a copy of its weights when it improved,
    written at once with ``save_best`` (a long run can be stopped at any time and keep its best model)."""
    if val < best:
        best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
        if save_best is not None:
            save_best(model, {"val_mean_jct_s": best, "history": history, "partial": True})
    return best, best_state


def _episode(task: tuple) -> dict:
    """One episode in a worker process: (state dict, GNN config, jobs, workload seed, policy seed or None
    for greedy, decision cap) -> :func:`batched_rollout`'s record (observations only when sampling)."""
    state, cfg, jobs, seed, policy_seed, cap = task
    torch.set_num_threads(1)
    model = DecimaGNN(cfg)
    model.load_state_dict(state)
    pol = ModelScheduler(model=model.eval(), greedy=policy_seed is None, seed=policy_seed or 0)
    return batched_rollout(make_envs(jobs, 1), [seed], pol, record=policy_seed is not None, max_decisions=cap)[0]


class Episodes:
    """Where episodes run: side by side in this process (``workers`` ≤ 1: one batched forward per round)
    or one per task over a pool of ``workers`` spawned CPU processes (the simulator is single-threaded
    Python; a GPU in this process then only computes the updates)."""

    def __init__(self, workers: int):
        self.pool = None
        if workers > 1:
            import multiprocessing as mp

            self.pool = mp.get_context("spawn").Pool(workers)

    def run(self, model, jobs: int, seeds: list[int], policy_seeds: list[int] | None, cap: int) -> list[dict]:
        if self.pool is None:
            greedy = policy_seeds is None
            pol = ModelScheduler(model=model, greedy=greedy, seed=0 if greedy else policy_seeds[0],
                                 device=next(model.parameters()).device)
            return batched_rollout(make_envs(jobs, len(seeds)), seeds, pol, record=not greedy, max_decisions=cap)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        tasks = [(state, model.cfg, jobs, s, None if policy_seeds is None else p, cap)
                 for s, p in zip(seeds, policy_seeds or seeds)]
        return self.pool.map(_episode, tasks, chunksize=1)

    def map(self, fn, tasks: list) -> list:
        """``fn`` over ``tasks`` in the workers (one task at a time each) or here, results in order."""
        return [fn(t) for t in tasks] if self.pool is None else self.pool.map(fn, tasks, chunksize=1)

    def mean_jct(self, model, jobs: int, seeds: list[int], log=None) -> float:
        """:func:`evaluation.rollout.mean_jct` over the workers."""
        if self.pool is None:
            return mean_jct(model, make_envs(jobs, len(seeds)), seeds, next(model.parameters()).device, log=log)
        trajs = self.run(model, jobs, seeds, None, DECISIONS_PER_JOB_CAP * jobs)
        if any(t["truncated"] for t in trajs):
            return float("inf")
        return float(np.mean([t["mean_jct_s"] for t in trajs]))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def train(args: GNNTraining, log=print, save_best=None) -> tuple[DecimaGNN, dict]:
    from agents import make_agent

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
    if args.imitate not in ("fair", "wfair", "fifo"):
        raise SystemExit(f"--imitate {args.imitate!r}: use fair, wfair or fifo")
    if args.val_every < 1 or args.workers < 0 or args.time_budget_s < 0:
        raise SystemExit(f"--val-every {args.val_every}, --workers {args.workers}, --time-budget-s "
                         f"{args.time_budget_s}: need val-every ≥ 1, workers ≥ 0, time-budget-s ≥ 0")
    expert = make_agent("cjs", args.imitate)
    # 1) behaviour cloning of a heuristic, then DAgger rounds labelled by it
    pool_trajs = None
    if args.pool_file:
        from .cjs_pool import replay_pool

        pool_trajs = replay_pool(args.pool_file)
    best = imitate(model, opt, pool_expert=expert, labeler=expert, jobs=args.jobs,
                   bc_episodes=0 if args.init else args.bc_episodes, bc_epochs=args.bc_epochs,
                   rounds=args.dagger_rounds, episodes=args.dagger_episodes, epochs=args.dagger_epochs,
                   beta=args.dagger_beta, val_seeds=val_seeds, val_jobs=args.val_jobs, device=device, log=log,
                   save_best=save_best, history=history, pool_trajs=pool_trajs)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    episodes = Episodes(args.workers)
    # 2) REINFORCE with the time-based baseline
    for it in range(args.iterations):
        if args.time_budget_s and time.perf_counter() - t0 > args.time_budget_s:
            log(f"pg: time budget spent after {it} iterations")
            break
        # one workload per iteration, each rollout sampling its own decisions
        rolls = episodes.run(model, args.jobs, [20_000 + it] * args.rollouts,
                             [args.seed * 100_000 + it * 100 + r for r in range(args.rollouts)],
                             DECISIONS_PER_JOB_CAP * args.jobs)
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
        late = args.time_budget_s and time.perf_counter() - t0 > args.time_budget_s
        if (it + 1) % args.val_every and it + 1 < args.iterations and not late:
            log(f"pg {it + 1}: train JCT {float(np.mean([r['mean_jct_s'] for r in rolls])):.2f} s")
            continue
        val = episodes.mean_jct(model, args.val_jobs, val_seeds, log=log)
        train_jct = float(np.mean([r["mean_jct_s"] for r in rolls]))
        history.append({"stage": "pg", "iteration": it + 1, "train_mean_jct_s": train_jct, "val_mean_jct_s": val})
        log(f"pg {it + 1}: train JCT {train_jct:.2f} s, validation JCT {val:.2f} s")
        best, best_state = keep_best(model, val, best, best_state, history, save_best)
    episodes.close()
    model.load_state_dict(best_state)
    return model.cpu().eval(), {"val_mean_jct_s": best, "history": history,
                                "train_seconds": time.perf_counter() - t0, "val_seeds": val_seeds}


def run_gnn_trainer(config_cls, train_fn, argv, prog: str, doc: str) -> None:
    """A GNN trainer's command line: parse ``config_cls``, train (the best checkpoint written to ``--out`` as it
    improves, and at the end), say where it went."""
    args = parse_dataclass_args(config_cls, argv, prog, doc)

    def save_best(model, metrics):
        save_checkpoint(model, args.out, {"args": asdict(args), "metrics": metrics})

    model, metrics = train_fn(args, save_best=save_best)
    save_best(model, metrics)
    print(f"wrote {args.out}: validation mean JCT {metrics['val_mean_jct_s']:.2f} s")


def main(argv=None) -> None:
    run_gnn_trainer(GNNTraining, train, argv, "python -m distill.cjs gnn", __doc__)
