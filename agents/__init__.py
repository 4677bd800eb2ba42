"""Agents: the :class:`Policy` protocol, baselines, and (with torch) teacher/student models.

Heuristic baselines import no torch. ``make_agent(env, name, **context)`` builds any registered agent.
"""

from __future__ import annotations

from .base import BatchPolicy, Policy

ABR_AGENTS = ("bba", "bola", "rate-based", "robustmpc", "mpc-netllm", "offline-optimal")


def make_abr_agent(name: str, video, traces=None):
    """Build an ABR agent by name for ``video`` (a :class:`traces.Video`).

    ``offline-optimal`` also needs the env's :class:`traces.TraceSet` (it plans on the whole trace).
    """
    from . import abr

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


__all__ = ["BatchPolicy", "Policy", "ABR_AGENTS", "make_abr_agent"]
