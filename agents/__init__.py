"""Agents: the :class:`Policy` protocol, baselines, and (with torch) teacher/student models.

Heuristic baselines import no torch. ``make_agent(env, name, **context)`` builds any registered agent.
"""

from __future__ import annotations

from .base import BatchPolicy, Policy

ABR_AGENTS = ("bba", "bola", "rate-based", "robustmpc", "mpc-netllm", "offline-optimal", "teacher")


def make_abr_agent(name: str, video, traces=None):
    """Build an ABR agent by name for ``video`` (a :class:`traces.Video`).

    ``offline-optimal`` also needs the env's :class:`traces.TraceSet` (it plans on the whole trace).
    """
    from . import abr

    if name == "teacher":
        from .teacher import PRETRAINED_ABR, TeacherPolicy, load_teacher

        model, meta = load_teacher(PRETRAINED_ABR)
        return TeacherPolicy(model, meta["target_return"])
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


VP_AGENTS = ("lr", "velocity", "static", "track")


def make_vp_agent(name: str):
    """Build a viewport-prediction agent by name (``track`` needs torch and loads the shipped checkpoint)."""
    from . import vp

    if name == "track":
        from .vp_track import TrackVP

        return TrackVP()
    table = {"lr": vp.LinearRegressionVP, "velocity": vp.VelocityVP, "static": vp.StaticVP}
    if name not in table:
        raise ValueError(f"unknown VP agent {name!r}; available: {', '.join(VP_AGENTS)}")
    return table[name]()


CJS_AGENTS = ("fifo", "fair")


def make_cjs_agent(name: str):
    """Build a cluster-scheduling agent by name."""
    from . import cjs

    table = {"fifo": cjs.FIFO, "fair": cjs.Fair}
    if name not in table:
        raise ValueError(f"unknown CJS agent {name!r}; available: {', '.join(CJS_AGENTS)}")
    return table[name]()


__all__ = ["BatchPolicy", "Policy", "ABR_AGENTS", "VP_AGENTS", "CJS_AGENTS", "make_abr_agent", "make_vp_agent",
           "make_cjs_agent"]
