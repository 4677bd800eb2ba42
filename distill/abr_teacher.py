"""NetLLM's data-driven low-rank adaptation of the teacher (ABR): return-conditioned offline RL.

    python -m distill.abr teacher --pool pools/abr-fcc-train [--backbone smollm2-135m]
        [--steps 2000] [--batch-size 64] [--lr 1e-4] [--out agents/pretrained/teacher_abr]

Windows of ``W`` consecutive decisions are sampled from the pool (left-padded at episode starts);
the loss is cross-entropy of the pool's actions at every real step. With ``--dagger-rounds N
--dagger-labeler AGENT`` the ``--steps`` budget is split over ``N + 1`` phases and after each but the
last the teacher plays ``--dagger-traces`` in the simulator while AGENT (any ABR agent, e.g. ``ppo``,
the RL policy whose pool it imitates, as NetLLM's pool came from an RL policy) labels every state it
reached; those episodes join the pool with the labels as targets (closed loop). Only LoRA, the state encoder,
the embeddings and the head train; the backbone stays frozen. Every ``--save-every`` steps the run
writes ``OUT/train_state/`` (trainable weights and AdamW state as safetensors + JSON step/RNG), and a
rerun with the same ``--out`` resumes from it. Logs: ``OUT/log.csv``. At the end the teacher is
evaluated on fcc-test (test mode) and the checkpoint (``adapter.safetensors`` + ``config.json``)
records the numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents.teacher import ABRTeacher, TeacherConfig, TeacherPolicy, save_teacher
from traces.atomic import staged_dir, write_csv_atomic

from .abr_pool import load_pool


@dataclass
class TeacherAdaptation:
    env: str = "abr"
    pool: str = "pools/abr-fcc-train"  # experience pool folder (python -m distill.abr pool)
    backbone: str = "smollm2-135m"  # smollm2-135m | random:smollm2-135m | tiny-random | local folder
    lora_rank: int = 128
    window: int = 10
    policies: str = ""  # train only on these pool policies (comma list; "" = all), e.g. offline-optimal
    condition: str = "return"  # "return" (NetLLM's decision transformer) or "none" (plain imitation)
    target_quantile: float = 1.0  # inference target = this quantile of the training episodes' returns
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.25  # NetLLM clips gradients at 0.25
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    save_every: int = 500
    log_every: int = 50
    eval_traces: str = "fcc-valid-clean,oboe"  # validation sets (fcc-test is reported by compare, once)
    # closed loop (DAgger): the teacher plays --dagger-traces after each of the first --dagger-rounds phases of
    # --steps, this ABR agent (e.g. ppo, robustmpc) labels every state it reached, and those episodes join the pool
    dagger_rounds: int = 0
    dagger_labeler: str = ""
    dagger_traces: str = "fcc-train-clean+randomized:200"
    out: str = "agents/pretrained/teacher_abr"


class WindowSampler:
    """Random windows of consecutive decisions from a pool (flat arrays, episodes contiguous)."""

    def __init__(self, arrays: dict[str, np.ndarray], window: int, levels: int):
        self.a = arrays
        self.W, self.levels = window, levels
        ep = arrays["episode"]
        change = np.r_[True, ep[1:] != ep[:-1]]
        starts = np.flatnonzero(change)
        self.ep_start = np.repeat(starts, np.diff(np.r_[starts, len(ep)]))  # (N,) first index of my episode

    def sample(self, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return self.at(rng.integers(len(self.ep_start), size=batch))

    def at(self, end: np.ndarray) -> dict[str, np.ndarray]:
        """The windows that end at transitions ``end`` (B,)."""
        idx = end[:, None] + np.arange(-self.W + 1, 1)[None, :]  # (B, W)
        valid = idx >= self.ep_start[end][:, None]
        idx = np.where(valid, idx, end[:, None])
        a = self.a
        return {
            "returns": np.where(valid, a["return_to_go"][idx], 0.0).astype(np.float32),
            "states": (a["obs"][idx] * valid[..., None, None]).astype(np.float32),
            "actions": np.where(valid, a["action"][idx], self.levels),
            "timesteps": np.where(valid, a["timestep"][idx], 0),
            "mask": valid.astype(np.int64),
            "target": np.where(valid, a.get("label", a["action"])[idx], -100),  # DAgger rows: the labeler's
        }


class _Labeller:
    """Acts as ``actor`` while ``labeler`` sees the same observations and infos (its own per-episode state
    follows the actor's trajectory); records the labeler's choice at every decision."""

    def __init__(self, actor, labeler):
        self.actor, self.labeler, self.name = actor, labeler, getattr(actor, "name", "actor")
        self.labels: list[np.ndarray] = []

    def reset(self, seed=None) -> None:
        self.actor.reset(seed)
        self.labeler.reset(seed)

    def act_batch(self, obs, info):
        self.labels.append(np.asarray(self.labeler.act_batch(obs, info), dtype=np.int64))
        return self.actor.act_batch(obs, info)


def labelled_rollout(policy, labeler, traces_name: str, seed: int, history: int, target_return: float = 0.0,
                     first_episode: int = 0) -> dict[str, np.ndarray]:
    """``policy`` plays every trace of ``traces_name`` once (start rows drawn from ``seed``): flat transitions
    in the pool's layout (episodes numbered from ``first_episode``; ``action`` = what was played, ``reward``
    = per-chunk QoE, ``return_to_go`` = what it was conditioned on). With a ``labeler`` (any ABR
    :class:`agents.base.Policy`) also ``label``: the labeler's choice at every state the policy visited."""
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    traces, video = load_abr_traces(traces_name), load_abr_video("video1")
    rng = np.random.default_rng(seed)
    starts = np.asarray([rng.integers(1, len(t)) for t in traces.traces], dtype=np.int64)
    actor = policy if labeler is None else _Labeller(policy, labeler)
    rec = evaluate_abr(actor, traces, video, history=history, start_index=starts, keep_obs=True,
                       batch_size=len(traces)).records  # one batch: the labels come in step order
    E, T = rec["action"].shape
    received = np.concatenate([np.zeros((E, 1)), np.cumsum(rec["qoe"], axis=1)[:, :-1]], axis=1)
    flat = {"obs": rec["obs"][:, :T].reshape(E * T, *rec["obs"].shape[2:]), "action": rec["action"].reshape(-1),
            "return_to_go": (target_return - received).reshape(-1).astype(np.float32),
            "episode": first_episode + np.repeat(np.arange(E), T), "timestep": np.tile(np.arange(T), E),
            "reward": rec["qoe"].reshape(-1)}
    if labeler is not None:
        flat["label"] = np.stack(actor.labels, axis=1).reshape(-1)  # (E, T) -> flat
    return flat


SAMPLED_KEYS = ("obs", "action", "label", "return_to_go", "episode", "timestep")  # what training reads


def with_dagger(pool: dict[str, np.ndarray], dagger: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The pool (label = its action) followed by the DAgger transitions, in the keys training reads."""
    base = {k: pool[k] for k in SAMPLED_KEYS if k != "label"} | {"label": pool["action"]}
    if dagger is None:
        return base
    return {k: np.concatenate([base[k], dagger[k].astype(base[k].dtype)]) for k in SAMPLED_KEYS}


def _save_state(folder: Path, model, opt: torch.optim.Optimizer, step: int, rng,
                arrays: dict[str, dict[str, np.ndarray]] | None = None, notes: dict | None = None) -> None:
    """Resume state (weights, AdamW moments, RNG; plus any ``arrays`` as ``NAME.npz`` and JSON ``notes``
    such as logs so far), replaced atomically."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.float().cpu() for k, v in model.trainable_state().items()}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    for name, p in zip(names, params):
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                tensors[f"opt.{name}.{k}"] = st[k].float().cpu().contiguous()
    opt_steps = {name: float(opt.state[p]["step"]) for name, p in zip(names, params) if "step" in opt.state.get(p, {})}
    tensors["rng.torch"] = torch.get_rng_state()  # LoRA dropout draws from it
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    with staged_dir(folder) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"))
        for name, group in (arrays or {}).items():
            np.savez(tmp / f"{name}.npz", **group)
        (tmp / "state.json").write_text(json.dumps({"step": step, "opt_steps": opt_steps, "notes": notes or {},
                                                   "rng": rng.bit_generator.state}, default=float))


def _load_state(folder: Path, model: ABRTeacher, opt: torch.optim.Optimizer, rng) -> int:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "state.safetensors"))
    meta = json.loads((folder / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    for name, p in zip(names, params):
        if f"opt.{name}.exp_avg" in tensors:
            opt.state[p] = {"step": torch.tensor(meta["opt_steps"][name]),
                            "exp_avg": tensors[f"opt.{name}.exp_avg"].to(p.device),
                            "exp_avg_sq": tensors[f"opt.{name}.exp_avg_sq"].to(p.device)}
    rng.bit_generator.state = meta["rng"]
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return int(meta["step"])


def resume(state_dir: Path, model, opt: torch.optim.Optimizer, rng, log=print) -> tuple:
    """An interrupted run's state, if ``state_dir`` holds one (weights, optimiser and RNG restored in place):
    (step, its DAgger episodes or None, its log rows, its DAgger log, its seconds so far), so that the metrics
    cover the whole run; a fresh run's zeros otherwise."""
    if not (state_dir / "state.json").is_file():
        return 0, None, [], [], 0.0
    step, dagger = _load_state(state_dir, model, opt, rng), None
    if (state_dir / "dagger.npz").is_file():
        with np.load(state_dir / "dagger.npz", allow_pickle=False) as saved:
            dagger = {k: saved[k] for k in saved.files}
    notes = json.loads((state_dir / "state.json").read_text()).get("notes", {})
    log(f"resumed from {state_dir} at step {step}")
    return step, dagger, notes.get("log", []), notes.get("dagger", []), notes.get("seconds", 0.0)


def validate(make_policy, sets: str, history: int, log=print) -> dict:
    """Each named ABR set's summary (video1, test mode) for a fresh ``make_policy()``: the validation numbers
    the ABR trainers record in their checkpoints."""
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    video = load_abr_video("video1")
    ev = {name: evaluate_abr(make_policy(), load_abr_traces(name), video, history=history).summary()
          for name in sets.split(",")}
    log(f"eval: {json.dumps(ev)}")
    return ev


def stop_training(model, d, t0: float) -> dict | None:
    """After the last step: the model in eval mode; on rank 0 the seconds trained and the peak GPU memory, on
    other ranks None, their process group closed (they neither evaluate nor write)."""
    from . import ddp

    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if str(d.device).startswith("cuda") else None
    model.eval()
    if not d.main:
        ddp.cleanup(d)
        return None
    return {"train_seconds": seconds, "peak_gpu_mib": peak}


def finish_run(out: Path, log_rows: list, state_dir: Path, d) -> None:
    """A trainer's last step (rank 0, after its checkpoint is written): the loss log as CSV, the resumable
    state removed, the process group closed."""
    import shutil

    from . import ddp

    if log_rows:
        write_csv_atomic(out / "log.csv", log_rows)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    ddp.cleanup(d)


def start_run(args):
    """An ABR trainer's opening: ``--env`` checked, the process group set up (torchrun: one rank per GPU or CPU
    process; else a single process), the seed, the pool loaded and cut to ``--policies``.
    Returns (the process group, the pool's arrays, its meta)."""
    if args.env != "abr":
        raise SystemExit("only --env abr is implemented so far")
    from . import ddp

    d = ddp.setup(args.device)
    torch.manual_seed(args.seed)
    arrays, pool_meta = load_pool(args.pool)
    if args.policies:
        keep = np.isin(arrays["policy"], [pool_meta["policies"].index(p) for p in args.policies.split(",")])
        arrays = {k: v[keep] for k, v in arrays.items()}
    return d, arrays, pool_meta


def train(args: TeacherAdaptation, backbone=None, log=print) -> tuple[ABRTeacher, dict]:
    from . import ddp

    d, arrays, pool_meta = start_run(args)
    device = d.device
    history = arrays["obs"].shape[-1]
    cfg = TeacherConfig(backbone=args.backbone, lora_rank=args.lora_rank, window=args.window, history=history,
                        condition=args.condition)
    model = ABRTeacher(cfg, backbone).to(device)
    fwd = ddp.wrap(model, d)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    ep_returns = np.bincount(arrays["episode"] - arrays["episode"].min(), weights=arrays["reward"])
    ep_returns = ep_returns[np.unique(arrays["episode"] - arrays["episode"].min())]
    target = float(np.quantile(ep_returns, args.target_quantile)) if args.condition == "return" else 0.0
    labeler = None
    if args.dagger_rounds:
        if not args.dagger_labeler:
            raise SystemExit("--dagger-rounds needs --dagger-labeler (an ABR agent, e.g. ppo or robustmpc)")
        from agents import make_agent
        from traces import load_abr_video

        labeler = make_agent("abr", args.dagger_labeler, video=load_abr_video("video1"))
    out = Path(args.out)
    state_dir = out.parent / f".{out.name}.train_state"
    step, dagger, log_rows, dagger_log, done_seconds = resume(state_dir, model, opt, rng, log)
    data = with_dagger(arrays, dagger)
    sampler = WindowSampler(data, cfg.window, cfg.levels)
    phases = np.linspace(0, args.steps, args.dagger_rounds + 2).round().astype(int)[1:]  # each phase's last step
    t0 = time.perf_counter() - done_seconds
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def save(at: int) -> None:
        if d.main:
            _save_state(state_dir, model, opt, at, rng, None if dagger is None else {"dagger": dagger},
                        notes={"log": log_rows, "dagger": dagger_log, "seconds": time.perf_counter() - t0})

    model.train()
    while step < args.steps:
        b = sampler.sample(rng, args.batch_size)  # the global batch, same on every rank; keep my slice
        mine = ddp.my_slice(args.batch_size, d)
        t = {k: torch.as_tensor(v[mine], device=device) for k, v in b.items()}
        logits = fwd(t["returns"], t["states"], t["actions"], t["timesteps"], t["mask"])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.levels), t["target"].reshape(-1),
                                                 ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            with torch.no_grad():
                m = t["target"] >= 0
                acc = float((logits.argmax(-1)[m] == t["target"][m]).float().mean())
            row = {"step": step, "loss": ddp.mean(float(loss.detach()), d), "accuracy": ddp.mean(acc, d),
                   "seconds": time.perf_counter() - t0}
            log_rows.append(row)
            if d.main:
                log(f"step {step}: loss {row['loss']:.4f} acc {row['accuracy']:.3f}")
        if labeler is not None and step in phases and step < args.steps:  # end of a phase: a DAgger round
            model.eval()  # every rank rolls out the same episodes (deterministic), so the data stay in step
            new = labelled_rollout(TeacherPolicy(model, target, device), labeler, args.dagger_traces,
                                   args.seed + 1 + int(step), history, target, int(data["episode"].max()) + 1)
            model.train()
            dagger = new if dagger is None else {k: np.concatenate([dagger[k], new[k]]) for k in new}
            data = with_dagger(arrays, dagger)
            sampler = WindowSampler(data, cfg.window, cfg.levels)
            agree = float((new["label"] == new["action"]).mean())
            dagger_log.append({"step": step, "teacher_qoe": float(new["reward"].mean()), "labeler_agreement": agree,
                               "transitions": len(data["action"])})
            if d.main:
                log(f"DAgger at step {step}: teacher QoE on {args.dagger_traces} {new['reward'].mean():.4f}, "
                    f"{args.dagger_labeler} agrees on {agree:.1%}; {len(data['action'])} transitions")
            save(step)
        elif step % args.save_every == 0 and step < args.steps:
            save(step)
    timing = stop_training(model, d, t0)
    if timing is None:  # rank 0 evaluates and writes
        return model, {}
    metrics = {**timing, "target_return": target, "processes": d.world,
               "final_loss": log_rows[-1]["loss"] if log_rows else None, "dagger": dagger_log}
    if args.eval_traces:
        metrics["eval"] = validate(lambda: TeacherPolicy(model, target, device), args.eval_traces, model.cfg.history, log)
    save_teacher(model, out, {"target_return": target, "args": asdict(args), "pool": pool_meta.get("policies"),
                              "metrics": metrics})
    finish_run(out, log_rows, state_dir, d)
    return model, metrics


def main(argv=None) -> None:
    from . import run_trainer

    run_trainer(TeacherAdaptation, train, argv, "python -m distill.abr teacher", __doc__)

