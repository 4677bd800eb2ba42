"""Agents: the :class:`Policy` protocol, every decision maker behind it, and the models they run.

Heuristic baselines import no torch. One table (:mod:`agents.registry`) names every agent of every task:
``make_agent(task, name, **context)`` builds one, ``agent_names(task)`` lists them.

Layout: ``base`` (the protocol) · ``abr``, ``vp``, ``cjs``, ``offline`` (rules and the ABR optimum) ·
``hybrid/`` (the Mamba-2 + attention backbone: ops → mixers → backbone, fused kernels) · ``teacher``,
``student`` (ABR), ``vp_llm``, ``vp_track``, ``cjs_gnn``, ``cjs_llm`` (task models and
their policies) · ``sb3`` (stable-baselines3 adapters) · ``checkpoint`` (safetensors + JSON) ·
``pretrained/`` (shipped checkpoints). Training lives in :mod:`distill`.
"""

from __future__ import annotations

from .base import BatchPolicy, Policy
from .registry import REGISTRY, AgentSpec, agent_names, agent_spec, available, default_agents, make_agent

__all__ = ["AgentSpec", "BatchPolicy", "Policy", "REGISTRY", "agent_names", "agent_spec", "available",
           "default_agents", "make_agent"]
