"""Cluster job scheduling: adapt the LLM teacher and distil the Mamba student, in the closed loop.

    python -m distill.cjs teacher [--backbone smollm2-135m] [--lora-rank 128] --out agents/pretrained/teacher_cjs
    python -m distill.cjs student --teacher agents/pretrained/teacher_cjs [--init cwr] --out agents/pretrained/student_cjs
    (also reachable as ``python -m distill.cjs teacher ...`` / ``python -m distill.cjs student ...``)

Both roles run :func:`distill.cjs_imitation.imitate` on 50-job workloads (Decima's shorter training episodes):

* **Pool** (offline part): ``--bc-episodes`` workloads scheduled by the pool's scheduler (``wfair``,
  the strongest baseline), every decision kept with its action; or ``--pool-file``, a recorded pool
  (``python -m distill.cjs pool``), replayed.
* **Start**: the teacher's encoder and heads (and the student's, when it is not initialised from the
  teacher) start as the shipped Decima GNN (``--task-init``; ``''`` = random), the projections from the
  backbone at zero: the scheduler starts where the GNN stands and the backbone learns to improve on it.
* **Teacher**: cross-entropy on those actions, then DAgger rounds in which the teacher schedules and
  ``wfair`` labels the states it reaches (a clone alone drifts where the pool never went).
* **Student** (Mamba4Net's DKO for a policy): ``L = CE(label) + β·T²·KL(π_teacher ‖ π_student)`` on the
  stage distribution and on the limit distribution of the labelled stage's job (β = 0.5, T = 2), the
  teacher's logits computed on each minibatch; labels are the pool's actions on pool states and the
  **teacher's** actions on the states the student visits in the DAgger rounds (closed loop). ``--teacher
  ''`` trains the student alone (Mamba4Net-S): no KL, ``wfair`` labels the DAgger states.

``--pool`` may name any CJS agent, model-backed ones too (run on the training device).

After each stage the validation JCT (seeds 2000+, ``--val-jobs`` jobs) picks the weights kept (the best
so far is written to ``--out`` as training goes); with ``--eval-seeds N`` the model is then scored on N
generated validation workloads from ``--eval-first`` (the test workloads are scored by ``python -m
evaluation.compare --env cjs``, once per shipped model) and saved (bf16 safetensors + JSON
config with the metrics, training time and peak GPU memory). On CUDA the schedulers run in CUDA graphs
(:class:`agents.cjs_llm.GraphedForward`), all workloads of a stage side by side in one batch.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from traces.atomic import write_text_atomic


@dataclass
class CJSDistillation:
    role: str = "teacher"  # teacher | student
    backbone: str = "smollm2-135m"  # teacher backbone (name or local folder)
    lora_rank: int = 32  # NetLLM uses 128 for CJS; 32 keeps the shipped adapter under 10 MB (as the ABR teacher)
    teacher: str = "agents/pretrained/teacher_cjs"  # student: the teacher folder; "" = trained alone
    init: str = "cwr"  # student: cwr | random
    # teacher, and student with --init random: start the encoder and heads as this Decima GNN ("" = random)
    task_init: str = "agents/pretrained/cjs_gnn"
    init_from: str = ""  # continue from this checkpoint folder of the same role (use with --bc-episodes 0)
    layers: str = "mmmmmmmmmmaa"
    d_model: int = 256
    d_state: int = 64
    headdim: int = 64
    hidden: int = 64  # DAG encoder / head width
    share_features: bool = False  # student: jobs also carry wfair's statistics (agents.cjs_llm.share_features)
    pool: str = "wfair"  # the scheduler whose decisions form the offline pool
    pool_file: str = ""  # or a recorded pool (python -m distill.cjs pool): its workloads replace --bc-episodes
    jobs: int = 50  # jobs per training workload
    bc_episodes: int = 6
    bc_epochs: int = 4
    dagger_rounds: int = 3
    dagger_episodes: int = 8
    dagger_epochs: int = 2
    dagger_beta: float = 0.5  # round r follows the labeler with probability beta^r
    kl_beta: float = 0.5  # student: weight of the KL to the teacher
    labeler: str = "teacher"  # who labels the DAgger states: teacher | pool (then the teacher only enters the KL)
    temperature: float = 2.0
    batch_size: int = 256
    decision_cap: int = 600  # training / validation episodes are cut past this many decisions per job
    lr: float = 1e-3  # encoder, tokens, heads (and the whole student)
    backbone_lr: float = 1e-4  # the teacher's LoRA weights (NetLLM's learning rate)
    anchor_lr: float = -1.0  # with --task-init: the GNN-copied parts' learning rate (-1 = --lr, 0 = frozen)
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    val_seeds: int = 2
    val_jobs: int = 100
    eval_seeds: int = 0  # validation workloads scored at the end (0 = none) ...
    eval_first: int = 2000  # ... from this seed (a run split over processes; --merge-evals joins them)
    eval_jobs: int = 200
    validate_start: bool = True  # validate the start (off: the first DAgger round's weights are kept even if worse)
    eval_only: str = ""  # evaluate this checkpoint (teacher, student or Decima GNN) on the held-out seeds; OUT/metrics.json
    # ... made cheaper to run (agents.cjs_llm.for_inference): a teacher's LoRA merged into its weights (bf16
    # linears on CUDA), a student's backbone in fused Triton kernels (CUDA)
    merge_lora: bool = True
    merge_evals: str = ""  # comma list of --eval-only OUT folders (disjoint seeds): one metrics.json in --out
    out: str = ""


def _peak_mib(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None  # None: valid JSON


def forward_for(model, device, batch: int):
    """CUDA graphs around the model on CUDA (one replay per decision); the model itself elsewhere."""
    if device.type != "cuda":
        return None
    from agents.cjs_llm import GraphedForward

    return GraphedForward(model, batch)


def evaluate(model, device, seeds, jobs: int, name: str, partial: Path | None = None, log=print) -> dict:
    """Mean / median / p90 JCT and makespan of ``model`` (greedy) on ``seeds``, side by side. Each
    workload is logged as it finishes and, with ``partial``, added to that JSON file (written whole each
    time), so a run cut by a time limit keeps the workloads it finished."""
    from agents.cjs_gnn import ModelScheduler
    from envs.cjs import CJSConfig
    from evaluation.cjs import evaluate_cjs

    pol = ModelScheduler(model=model, device=device, forward=forward_for(model, device, len(seeds)), name=name)
    t0 = time.perf_counter()
    finished: dict = {}

    def done(seed, jct_s, makespan_s, decisions):
        elapsed = time.perf_counter() - t0
        finished[str(seed)] = {"mean_jct_s": float(np.mean(jct_s)), "makespan_s": float(makespan_s),
                               "decisions": int(decisions), "seconds": round(elapsed, 1),
                               "jct_s": [round(float(x), 3) for x in jct_s]}
        log(f"seed {seed}: mean JCT {np.mean(jct_s):.2f} s, {decisions} decisions, {elapsed:.0f} s in")
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(partial, json.dumps({"seeds_asked": list(seeds), "finished": finished}, indent=1))

    run = evaluate_cjs(pol, seeds, CJSConfig(num_jobs=jobs), on_done=done)
    return {**run.summary(), "per_seed_mean_jct_s": [float(j.mean()) for j in run.jct_s], "seed_list": list(seeds),
            "jct_s": [[round(float(x), 3) for x in j] for j in run.jct_s],
            "makespans_s": [float(m) for m in run.makespan_s], "decision_counts": [int(d) for d in run.decisions],
            "eval_seconds": time.perf_counter() - t0}


def merge_evals(folders: list[str]) -> dict:
    """One held-out result from ``--eval-only`` runs on disjoint seeds (e.g. one process per seed pair):
    the summary recomputed over all seeds, as :meth:`evaluation.cjs.CJSRun.summary` computes it."""
    from evaluation.cjs import CJSRun

    missing = [f for f in folders if not (Path(f) / "metrics.json").is_file()]
    if missing:
        raise SystemExit(f"--merge-evals: no metrics.json in {missing} (was that --eval-only run cut?)")
    parts = [json.loads((Path(f) / "metrics.json").read_text()) for f in folders]
    tests = [p["test"] for p in parts]
    seeds = [s for t in tests for s in t["seed_list"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge-evals: seeds overlap across {folders}: {sorted(seeds)}")
    checkpoints = {p["checkpoint"] for p in parts}
    if len(checkpoints) != 1:
        raise SystemExit(f"--merge-evals: the parts evaluated different checkpoints {sorted(checkpoints)}")
    merged_lora = {p.get("lora_merged") for p in parts}
    if len(merged_lora) != 1:
        raise SystemExit(f"--merge-evals: some parts ran with the LoRA merged, some without ({folders})")
    order = np.argsort(seeds)
    jct = [np.asarray(j) for t in tests for j in t["jct_s"]]
    spans = [m for t in tests for m in t["makespans_s"]]
    decisions = [d for t in tests for d in t["decision_counts"]]
    run = CJSRun(Path(parts[0]["checkpoint"]).name, [seeds[i] for i in order], [jct[i] for i in order],
                 [spans[i] for i in order], [decisions[i] for i in order])
    test = {**run.summary(), "per_seed_mean_jct_s": [float(j.mean()) for j in run.jct_s], "seed_list": run.seeds,
            "eval_seconds_max_part": max(t["eval_seconds"] for t in tests), "parts": len(parts)}
    return {"checkpoint": parts[0]["checkpoint"], "test": test, "trained": parts[0].get("trained", {}),
            "peak_gpu_mib": max(float(p.get("peak_gpu_mib") or 0) for p in parts), "lora_merged": merged_lora.pop()}


def build(args: CJSDistillation, device):
    """The model to train, the teacher (student role) and a report of the initialisation."""
    from agents.cjs_llm import CJSStudent, CJSStudentConfig, CJSTeacher, CJSTeacherConfig, load_cjs

    if args.role == "teacher":
        model = CJSTeacher(CJSTeacherConfig(backbone=args.backbone, lora_rank=args.lora_rank, hidden=args.hidden))
        return model, None, _anchor(model, args.task_init)
    if args.role != "student":
        raise SystemExit(f"--role {args.role!r}: use teacher or student")
    teacher = _load_teacher(args.teacher, device) if args.teacher else None
    student = CJSStudent(CJSStudentConfig(layers=args.layers, d_model=args.d_model, d_state=args.d_state,
                                          headdim=args.headdim, hidden=args.hidden,
                                          share_features=args.share_features))
    if args.init == "cwr":
        if teacher is None or not hasattr(teacher, "backbone"):
            raise SystemExit("--init cwr needs an LLM --teacher (or use --init random)")
        from .cwr import cwr_init_cjs

        return student, teacher, cwr_init_cjs(student, teacher)
    if args.init != "random":
        raise SystemExit(f"--init {args.init!r}: use cwr or random")
    return student, teacher, _anchor(student, args.task_init)


def _load_teacher(folder: str, device):
    """A CJS teacher checkpoint — or a Decima GNN (``agents.cjs_gnn``), e.g. the student's own start,
    whose KL term then keeps the student near it (a trust region)."""
    from agents.cjs_llm import load_cjs

    config = Path(folder) / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("model") == "decima-gnn":
        from agents.cjs_gnn import load_checkpoint

        return load_checkpoint(folder)[0].to(device)
    return load_cjs(folder, device=str(device))[0]


ANCHORED = ("enc", "q_skip", "j_skip", "stage_head", "wait_head", "wait_job", "limit_head")  # what --task-init copies


def _anchor(model, folder: str) -> dict:
    """``--task-init``: the encoder and heads start as the Decima GNN in ``folder`` (nothing when empty)."""
    if not folder:
        return {"task_init": "random"}
    from agents.cjs_gnn import load_checkpoint
    from agents.cjs_llm import anchor_to_gnn

    gnn, _ = load_checkpoint(folder)
    return {**anchor_to_gnn(model.task, gnn.float()), "task_init_from": str(folder)}


def _continue_from(model, folder: str) -> dict:
    """Load the trained tensors of a checkpoint of the same role into ``model`` (bf16 -> fp32)."""
    from agents.checkpoint import read_checkpoint
    from agents.cjs_llm import CJSStudentConfig, CJSTeacherConfig
    from agents.teacher import load_trained

    teacher = "teacher" in type(model).__name__.lower()
    weights, cfg, meta = read_checkpoint(folder, CJSTeacherConfig if teacher else CJSStudentConfig,
                                         "python -m distill.cjs", weights="adapter.safetensors" if teacher else
                                         "model.safetensors")
    if not teacher and not cfg.share_features and model.cfg.share_features:  # the new columns start at zero
        from agents.cjs_llm import widen_for_share_features

        cfg, weights = replace(cfg, share_features=True), widen_for_share_features(weights, model)
    if cfg != model.cfg:
        raise SystemExit(f"--init-from {folder}: its config {cfg} differs from this run's {model.cfg}")
    load_trained(model, weights, folder)
    return {"init_from": str(folder), "init_from_metrics": meta.get("metrics", {}).get("val_mean_jct_s")}


def evaluate_only(args: CJSDistillation, log=print) -> dict:
    from agents.cjs_llm import CJSStudent, CJSTeacher, for_inference, load_cjs

    device = torch.device(args.device)
    model, meta = load_cjs(args.eval_only, device=str(device))
    seeds = [args.eval_first + i for i in range(args.eval_seeds)]
    kind = "teacher" if isinstance(model, CJSTeacher) else "student" if isinstance(model, CJSStudent) else "gnn"
    if args.merge_lora:
        model = for_inference(model)
    partial = Path(args.out) / "partial.json" if args.out else None
    metrics = {"checkpoint": args.eval_only,
               "test": evaluate(model, device, seeds, args.eval_jobs, kind, partial=partial, log=log),
               "trained": meta.get("metrics", {}), "peak_gpu_mib": _peak_mib(device),
               "lora_merged": bool(args.merge_lora and kind == "teacher"),
               "student_fused": bool(getattr(model, "fused", False))}
    log(f"{args.eval_only} on seeds {seeds[0]}–{seeds[-1]}: mean JCT {metrics['test']['mean_jct_s']:.2f} s")
    return metrics


def train(args: CJSDistillation, log=print):
    from agents import make_agent
    from agents.cjs_gnn import ModelScheduler
    from agents.checkpoint import file_sha256
    from agents.cjs_llm import save_cjs
    from agents.hybrid import count_parameters

    from .cjs_imitation import imitate


    if not args.out:
        raise SystemExit("--out DIR is required")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    model, teacher, init_report = build(args, device)
    if args.init_from:
        init_report = {**init_report, **_continue_from(model, args.init_from)}
    model.to(device).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    lora = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")] \
        if args.role == "teacher" else []
    anchor = init_report.get("task_init") == "decima-gnn" and args.anchor_lr >= 0
    anchored = [p for n, p in model.named_parameters()
                if anchor and p.requires_grad and n.split(".")[:2] in [["task", m] for m in ANCHORED]]
    rest = [p for p in params if all(p is not q for q in lora + anchored)]
    groups = [{"params": rest, "lr": args.lr}] + ([{"params": lora, "lr": args.backbone_lr}] if lora else [])
    if anchored:  # lr 0 keeps the GNN as it is (still saved, as trained tensors): the backbone learns a correction
        groups.append({"params": anchored, "lr": args.anchor_lr})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    # a model-backed pool scheduler runs on the training device, graphed for the widest batched rollout
    pool = make_agent("cjs", args.pool, device=str(device), batch=max(16, args.bc_episodes, args.dagger_episodes))
    if args.labeler not in ("teacher", "pool"):
        raise SystemExit(f"--labeler {args.labeler!r}: use teacher or pool")
    if teacher is not None and args.labeler == "teacher":
        labeler = ModelScheduler(model=teacher, device=device, name="teacher",
                               forward=forward_for(teacher, device, args.dagger_episodes))
    else:
        labeler = pool
    meta = {"args": asdict(args), "init": init_report,
            "trainable_parameters": sum(p.numel() for p in params), "parameters": count_parameters(model)}
    adapter = Path(args.teacher or ".") / "adapter.safetensors"
    if args.role == "student" and teacher is not None and adapter.is_file():  # the pair: its adapter, byte for byte
        meta["teacher_adapter_sha256"] = file_sha256(adapter)

    def save(m, metrics):
        save_cjs(m, args.out, {**meta, "metrics": metrics})

    t0 = time.perf_counter()
    history: list = []
    val_seeds = [2000 + i for i in range(args.val_seeds)]
    pool_trajs = None
    if args.pool_file:
        from .cjs_pool import replay_pool

        pool_trajs = replay_pool(args.pool_file)
        meta["pool_file"] = {"path": args.pool_file, "workloads": len(pool_trajs),
                             "seeds": [t["seed"] for t in pool_trajs], "jobs": pool_trajs[0]["jobs"],
                             "mean_jct_s": float(np.mean([t["mean_jct_s"] for t in pool_trajs]))}
    best = imitate(model, opt, pool_expert=pool, labeler=labeler, jobs=args.jobs, bc_episodes=args.bc_episodes,
                   bc_epochs=args.bc_epochs, rounds=args.dagger_rounds, episodes=args.dagger_episodes,
                   epochs=args.dagger_epochs, beta=args.dagger_beta, val_seeds=val_seeds, val_jobs=args.val_jobs,
                   device=device, teacher=teacher, kl_beta=args.kl_beta if teacher is not None else 0.0,
                   temperature=args.temperature, batch=args.batch_size,
                   forward=forward_for(model, device, max(args.val_seeds, args.dagger_episodes)), log=log, save_best=save,
                   history=history, cap_per_job=args.decision_cap, validate_start=args.validate_start,
                   pool_trajs=pool_trajs)
    metrics = {"val_mean_jct_s": best if np.isfinite(best) else None, "val_seeds": val_seeds, "history": history,
               "train_seconds": time.perf_counter() - t0, "peak_gpu_mib": _peak_mib(device)}
    save(model, metrics)
    if args.eval_seeds:
        seeds = [args.eval_first + i for i in range(args.eval_seeds)]
        metrics["test"] = evaluate(model, device, seeds, args.eval_jobs, args.role, log=log)
        metrics["peak_gpu_mib"] = _peak_mib(device)
        log(f"held-out seeds {seeds[0]}–{seeds[-1]}: mean JCT {metrics['test']['mean_jct_s']:.2f} s "
            f"({metrics['test']['eval_seconds']:.0f} s)")
        save(model, metrics)
    return model, metrics


def main(argv=None, role: str = "teacher") -> None:
    from agents.checkpoint import parse_dataclass_args

    args = parse_dataclass_args(CJSDistillation, argv, f"python -m distill.cjs {role}", __doc__, fixed={"role": role})
    if args.merge_evals:
        metrics = merge_evals(args.merge_evals.split(","))
    elif args.eval_only:
        metrics = evaluate_only(args)
    else:
        _, metrics = train(args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.out) / "metrics.json", json.dumps(metrics, indent=2, default=float))
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2, default=float))

