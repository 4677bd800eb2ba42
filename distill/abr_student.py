"""Mamba4Net distillation of the ABR teacher into the hybrid Mamba student.

    python -m distill.abr student --pool pools/abr-fcc-train --teacher agents/pretrained/teacher_abr \\
        [--init cwr|random] [--dagger-rounds 2] [--steps 3000] [--out agents/pretrained/student_abr]

* **Init**: ``cwr`` (cross-architecture weight reuse from the teacher, :mod:`distill.cwr`) or ``random``.
* **DKO loss** (task-focused distillation, ABR form): on whole episodes,
  ``L = CE(student, target action) + β·T²·KL(softmax(teacher/T) ‖ softmax(student/T))`` at every real
  decision; the target action is the pool's action on pool episodes (offline RL by return-conditioned
  imitation, as the teacher was trained) and the teacher's choice on DAgger episodes. β = 0.5, T = 2.
  The teacher's logits are computed once per episode set, on the teacher's own window of
  (return-to-go, state, action) tokens, so it labels exactly what it would see when acting.
* **Closed loop (DAgger)**: the ``--steps`` budget is split over ``1 + dagger_rounds`` phases; after each
  phase but the last, the student plays ``--dagger-traces`` in the simulator (start rows drawn from
  ``--seed``), the teacher labels every state it visited, and those episodes join the training set.
* ``--teacher ''``: no teacher (the paper's Mamba4Net-S ablation): β = 0 and no DAgger.

Every ``--save-every`` steps and at each phase boundary the run writes ``.OUT.train_state/`` (weights,
AdamW state, RNG, the DAgger episodes so far); a rerun with the same ``--out`` resumes. At the end the
student is evaluated on ``--eval-traces`` and saved (``model.safetensors`` bf16 + ``config.json``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from agents.checkpoint import file_sha256
from agents.hybrid import count_parameters
from agents.student import ABRStudent, StudentConfig, StudentPolicy, save_student

from .abr_teacher import (WindowSampler, _save_state, finish_run, labelled_rollout, resume, start_run,
                          stop_training, validate)

EPISODE_KEYS = ("returns", "states", "prev", "timesteps", "mask", "target", "teacher")


@dataclass
class StudentDistillation:
    env: str = "abr"
    pool: str = "pools/abr-fcc-train"
    teacher: str = "agents/pretrained/teacher_abr"  # "" = no teacher (Mamba4Net-S)
    policies: str = ""  # pool policies to train on ("" = all)
    init: str = "cwr"  # cwr | random
    layers: str = "mmmmmmmmmmaa"
    d_model: int = 256
    d_state: int = 64
    headdim: int = 64
    condition: str = ""  # "" = the teacher's; else return | none
    beta: float = 0.5  # weight of the KL to the teacher
    temperature: float = 2.0
    dagger_rounds: int = 2
    dagger_traces: str = "fcc-train-clean+randomized:200"
    steps: int = 3000
    batch_size: int = 32  # episodes
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    save_every: int = 500
    log_every: int = 50
    eval_traces: str = "fcc-valid-clean,oboe"  # validation sets (fcc-test is reported by compare, once)
    out: str = "agents/pretrained/student_abr"


def episodes_from_flat(a: dict[str, np.ndarray], levels: int, target: np.ndarray,
                       teacher_logits: np.ndarray | None) -> dict[str, np.ndarray]:
    """Flat transitions (episodes contiguous) -> right-padded (E, T, ...) episode arrays."""
    ep = a["episode"]
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
    lengths = np.diff(np.r_[starts, len(ep)])
    E, T = len(starts), int(lengths.max())
    row = np.repeat(np.arange(E), lengths)
    col = np.arange(len(ep)) - np.repeat(starts, lengths)
    out = {"returns": np.zeros((E, T), np.float32), "states": np.zeros((E, T, *a["obs"].shape[1:]), np.float32),
           "prev": np.full((E, T), levels, np.int64), "timesteps": np.zeros((E, T), np.int64),
           "mask": np.zeros((E, T), bool), "target": np.full((E, T), -100, np.int64),
           "teacher": np.zeros((E, T, levels), np.float32)}
    out["returns"][row, col] = a["return_to_go"]
    out["states"][row, col] = a["obs"]
    out["timesteps"][row, col] = a["timestep"]
    out["mask"][row, col] = True
    out["target"][row, col] = target
    prev = np.r_[levels, a["action"][:-1]]
    prev[starts] = levels
    out["prev"][row, col] = prev
    if teacher_logits is not None:
        out["teacher"][row, col] = teacher_logits
    return out


def concat_episodes(a: dict, b: dict) -> dict:
    T = max(a["mask"].shape[1], b["mask"].shape[1])

    def pad(x, k):
        fill = {"target": -100}.get(k, 0)
        widths = [(0, 0), (0, T - x.shape[1])] + [(0, 0)] * (x.ndim - 2)
        return np.pad(x, widths, constant_values=fill) if x.shape[1] < T else x

    return {k: np.concatenate([pad(a[k], k), pad(b[k], k)]) for k in EPISODE_KEYS}


@torch.no_grad()
def teacher_logits(teacher, flat: dict[str, np.ndarray], device: str, batch: int = 1024) -> np.ndarray:
    """The teacher's logits at every transition of ``flat``, each on its own window ending there."""
    sampler = WindowSampler(flat, teacher.cfg.window, teacher.cfg.levels)
    out = []
    for lo in range(0, len(flat["action"]), batch):
        b = sampler.at(np.arange(lo, min(lo + batch, len(flat["action"]))))
        t = {k: torch.as_tensor(v, device=device) for k, v in b.items() if k != "target"}
        out.append(teacher(t["returns"], t["states"], t["actions"], t["timesteps"], t["mask"])[:, -1].float().cpu())
    return torch.cat(out).numpy()


def rollout(model: ABRStudent, target_return: float, traces_name: str, device: str, seed: int) -> dict[str, np.ndarray]:
    """The student plays every trace of ``traces_name`` once (random start rows); flat transitions with
    the return-to-go it was conditioned on (:func:`distill.abr_teacher.labelled_rollout`, no labeler)."""
    model.eval()
    flat = labelled_rollout(StudentPolicy(model, target_return, device), None, traces_name, seed, model.cfg.history,
                            target_return)
    model.train()
    return flat


def dko_loss(logits, target, teacher, mask, beta: float, temperature: float):
    """CE on target actions + β·T²·KL(teacher ‖ student) at the softened temperature, over real steps."""
    L = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, L), target.reshape(-1), ignore_index=-100)
    if beta == 0:
        return ce, ce.detach(), torch.zeros((), device=logits.device)
    m = mask.reshape(-1)
    s = F.log_softmax(logits.reshape(-1, L)[m] / temperature, -1)
    t = F.log_softmax(teacher.reshape(-1, L)[m] / temperature, -1)
    kl = F.kl_div(s, t, log_target=True, reduction="batchmean")
    return ce + beta * temperature ** 2 * kl, ce.detach(), kl.detach()


def train(args: StudentDistillation, teacher=None, log=print) -> tuple[ABRStudent, dict]:
    from . import ddp

    d, arrays, pool_meta = start_run(args)
    device = d.device
    teacher_meta: dict = {}
    if teacher is None and args.teacher:
        from agents.teacher import load_teacher

        teacher, teacher_meta = load_teacher(args.teacher, device=device)
    if teacher is not None:
        teacher = teacher.to(device).eval()
    condition = args.condition or (teacher.cfg.condition if teacher is not None else "return")
    history = arrays["obs"].shape[-1]
    cfg = StudentConfig(layers=args.layers, d_model=args.d_model, d_state=args.d_state, headdim=args.headdim,
                        history=history, condition=condition)
    model = ABRStudent(cfg)
    report = {}
    if args.init == "cwr":
        if teacher is None:
            raise SystemExit("--init cwr needs a teacher")
        from .cwr import cwr_init

        report = cwr_init(model, teacher)
        log(f"CWR: layer map {report['layer_map']}, basis energy {report['basis_energy']:.3f}")
    elif args.init != "random":
        raise SystemExit(f"--init {args.init!r}: use cwr or random")
    model = model.to(device).train()
    fwd = ddp.wrap(model, d)
    if "target_return" in teacher_meta:
        target_return = float(teacher_meta["target_return"])
    else:
        ep_returns = np.bincount(arrays["episode"] - arrays["episode"].min(), weights=arrays["reward"])
        target_return = float(ep_returns.max()) if condition == "return" else 0.0
    beta = args.beta if teacher is not None else 0.0
    rounds = args.dagger_rounds if teacher is not None else 0
    t0 = time.perf_counter()
    labels = teacher_logits(teacher, arrays, device) if teacher is not None else None
    pool_eps = episodes_from_flat(arrays, cfg.levels, arrays["action"], labels)
    label_seconds = time.perf_counter() - t0
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    state_dir = out.parent / f".{out.name}.train_state"
    step, dagger, log_rows, dagger_log, done_seconds = resume(state_dir, model, opt, rng, log)
    phases = np.linspace(0, args.steps, rounds + 2).round().astype(int)[1:]  # step at which each phase ends
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter() - done_seconds
    data = pool_eps if dagger is None else concat_episodes(pool_eps, dagger)

    def save(at: int) -> None:  # the DAgger episodes travel in the same atomically replaced folder
        if d.main:
            _save_state(state_dir, model, opt, at, rng, None if dagger is None else {"dagger": dagger},
                        notes={"log": log_rows, "dagger": dagger_log, "seconds": time.perf_counter() - t0})

    while step < args.steps:
        idx = rng.integers(len(data["mask"]), size=args.batch_size)[ddp.my_slice(args.batch_size, d)]
        b = {k: torch.as_tensor(data[k][idx], device=device) for k in EPISODE_KEYS}
        T = int(b["mask"].any(0).nonzero().max()) + 1
        b = {k: v[:, :T] for k, v in b.items()}
        logits = fwd(b["returns"], b["states"], b["prev"], b["timesteps"])
        loss, ce, kl = dko_loss(logits, b["target"], b["teacher"], b["mask"], beta, args.temperature)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            with torch.no_grad():
                m = b["target"] >= 0
                acc = float((logits.argmax(-1)[m] == b["target"][m]).float().mean())
            row = {"step": step, "loss": ddp.mean(float(loss.detach()), d), "ce": ddp.mean(float(ce), d),
                   "kl": ddp.mean(float(kl), d), "accuracy": ddp.mean(acc, d), "episodes": len(data["mask"]),
                   "seconds": time.perf_counter() - t0}
            log_rows.append(row)
            if d.main:
                log(f"step {step}: loss {row['loss']:.4f} ce {row['ce']:.4f} kl {row['kl']:.4f} acc {row['accuracy']:.3f}")
        if step in phases and step < args.steps:  # end of a phase: a DAgger round
            flat = rollout(model, target_return, args.dagger_traces, device, args.seed + 1 + int(step))
            lab = teacher_logits(teacher, flat, device)
            new = episodes_from_flat(flat, cfg.levels, lab.argmax(-1), lab)
            dagger = new if dagger is None else concat_episodes(dagger, new)
            data = concat_episodes(pool_eps, dagger)
            agree = float((lab.argmax(-1) == flat["action"]).mean())
            dagger_log.append({"step": step, "student_qoe": float(flat["reward"].mean()), "teacher_agreement": agree})
            (log if d.main else (lambda *_: None))(f"DAgger at step {step}: student QoE on {args.dagger_traces} {flat['reward'].mean():.4f}, "
                f"agrees with teacher on {agree:.1%}; {len(data['mask'])} episodes")
            save(step)
        elif step % args.save_every == 0 and step < args.steps:
            save(step)
    timing = stop_training(model, d, t0)
    if timing is None:  # rank 0 evaluates and writes
        return model, {}
    metrics = {**timing, "label_seconds": label_seconds, "processes": d.world,
               "parameters": count_parameters(model), "target_return": target_return, "cwr": report,
               "dagger": dagger_log, "final_loss": log_rows[-1]["loss"] if log_rows else None}
    if args.eval_traces:
        metrics["eval"] = validate(lambda: StudentPolicy(model, target_return, device), args.eval_traces,
                                   model.cfg.history, log)
    adapter = Path(args.teacher) / "adapter.safetensors" if args.teacher else None
    save_student(model, out, {"target_return": target_return, "args": asdict(args), "pool": pool_meta.get("policies"),
                              "teacher": args.teacher, "metrics": metrics,
                              # the pair: which teacher adapter, byte for byte, this student was distilled from
                              "teacher_adapter_sha256": file_sha256(adapter) if adapter and adapter.is_file() else None})
    finish_run(out, log_rows, state_dir, d)
    return model, metrics


def main(argv=None) -> None:
    from . import run_trainer

    run_trainer(StudentDistillation, train, argv, "python -m distill.abr student", __doc__)

