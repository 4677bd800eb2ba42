"""Viewport prediction: adapt the LLM teacher (supervised, NetLLM) and distil the Mamba student (DKO).

    python -m distill.vp teacher [--backbone smollm2-135m] [--lora-rank 32] --out agents/pretrained/teacher_vp
    python -m distill.vp student --teacher agents/pretrained/teacher_vp [--init cwr] --out agents/pretrained/student_vp
    (also reachable as ``python -m distill.vp teacher ...`` / ``python -m distill.vp student ...``)

Data: Jin2022 with NetLLM's split and windows (10 history samples at 5 Hz, 20 future). Task loss:
L1 in degrees on the offsets from the last history sample (the metric we report). The student's DKO
loss for regression: ``L = L1(student, truth) + α·L1(student, teacher)`` — the teacher's predictions
(computed once per window) play the role of its soft labels; α = 0.5. No closed loop: VP is open-loop
prediction, the student's outputs never change its inputs. Early stopping on valid MAE; the best epoch
is kept, evaluated on the test split, and saved (teacher: LoRA + tokens + head, bf16; student: all, bf16).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from traces.atomic import write_text_atomic

from . import EarlyStopping


@dataclass
class VPDistillation:
    role: str = "teacher"  # teacher | student
    backbone: str = "smollm2-135m"  # teacher backbone (name or local folder)
    lora_rank: int = 32
    teacher: str = "agents/pretrained/teacher_vp"  # student: the teacher folder; "" = trained alone
    init: str = "cwr"  # student: cwr | random
    layers: str = "mmmmmmmmmmaa"
    d_model: int = 256
    d_state: int = 64
    headdim: int = 64
    alpha: float = 0.5  # student: weight of matching the teacher's predictions
    epochs: int = 20
    patience: int = 4
    batch_size: int = 64
    lr: float = 3e-4
    schedule: str = "constant"  # constant | cosine (linear warm-up over 3% of the steps, cosine to 0)
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    limit: int = 0  # use only the first N train/valid/test windows (smoke tests); 0 = all
    out: str = ""


def _windows(limit: int):
    from .vp_track import offsets_from_last as _targets
    from traces.viewport import load_jin2022_split, make_windows

    out = {}
    for split in ("train", "valid", "test"):
        w = make_windows(load_jin2022_split(split))
        if limit:
            from traces.viewport import Windows

            w = Windows(*(getattr(w, f)[:limit] for f in ("history", "future", "history_t", "video", "user", "index")))
        out[split] = (w, *_targets(w))
    return out


def _schedule(opt, kind: str, total_steps: int):
    """Per-step learning-rate factor: ``constant`` or ``cosine`` (3% linear warm-up, cosine decay to 0)."""
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if kind != "cosine":
        raise SystemExit(f"--schedule {kind!r}: use constant or cosine")
    warm = max(1, int(0.03 * total_steps))

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train(args: VPDistillation, teacher=None, backbone=None, log=print):
    from agents.vp_llm import (VPStudent, VPStudentConfig, VPTeacher, VPTeacherConfig, load_vp, predict_degrees,
                               save_vp)
    from envs.vp import mae

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    dev = args.device
    data = _windows(args.limit)
    _, xh, yo = data["train"]
    xh_t = torch.as_tensor(xh, dtype=torch.float32, device=dev)
    yo_t = torch.as_tensor(yo, dtype=torch.float32, device=dev)
    soft = None
    report = {}
    if args.role == "teacher":
        model = VPTeacher(VPTeacherConfig(backbone=args.backbone, lora_rank=args.lora_rank), backbone).to(dev)
    elif args.role == "student":
        model = VPStudent(VPStudentConfig(layers=args.layers, d_model=args.d_model, d_state=args.d_state,
                                          headdim=args.headdim)).to(dev)
        if teacher is None and args.teacher:
            teacher, _ = load_vp(args.teacher, device=dev)
        if args.init == "cwr":
            if teacher is None:
                raise SystemExit("--init cwr needs a teacher")
            from .cwr import cwr_init_vp

            report = cwr_init_vp(model, teacher)
        if teacher is not None and args.alpha > 0:
            teacher = teacher.to(dev).eval()
            with torch.no_grad():
                soft = torch.cat([teacher(xh_t[i:i + 1024]) for i in range(0, len(xh_t), 1024)]).float()
    else:
        raise SystemExit(f"--role {args.role!r}: use teacher or student")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    sched = _schedule(opt, args.schedule, args.epochs * -(-len(xh) // args.batch_size))
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    stop, history = EarlyStopping(args.patience), []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.as_tensor(rng.permutation(len(xh)), device=dev)
        total = 0.0
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i:i + args.batch_size]
            pred = model(xh_t[idx])
            loss = (pred - yo_t[idx]).abs().mean()
            if soft is not None:
                loss = loss + args.alpha * (pred - soft[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        valid_mae = mae(predict_degrees(model, data["valid"][0].history, device=dev), data["valid"][0].future)
        history.append({"epoch": epoch + 1, "train_loss": total / len(perm), "valid_mae": valid_mae,
                        "seconds": time.perf_counter() - t0})
        log(f"epoch {epoch + 1}: train loss {total / len(perm):.3f}, valid MAE {valid_mae:.3f}")
        if stop.update(valid_mae, model.trainable_state):
            break
    model.load_state_dict(stop.state, strict=False)
    model.eval()
    test_w = data["test"][0]
    metrics = {"valid_mae": stop.best, "test_mae": mae(predict_degrees(model, test_w.history, device=dev), test_w.future),
               "epochs_run": len(history), "train_seconds": time.perf_counter() - t0, "history": history,
               "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.startswith("cuda") else None,
               "cwr": report}
    log(f"test MAE {metrics['test_mae']:.3f}")
    if args.out:
        save_vp(model, args.out, {"args": asdict(args), "metrics": metrics,
                                  "data": "jin2022 (NetLLM split)"})
    return model, metrics


def main(argv=None, role: str = "teacher") -> None:
    from agents.checkpoint import parse_dataclass_args

    args = parse_dataclass_args(VPDistillation, argv, f"python -m distill.vp {role}", __doc__, fixed={"role": role})
    _, metrics = train(args)
    if args.out:
        write_text_atomic(Path(args.out) / "metrics.json", json.dumps(metrics, indent=2, default=float))
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2, default=float))

