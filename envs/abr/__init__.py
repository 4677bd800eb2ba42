"""ABR: Pensieve/NetLLM-semantics streaming simulator (batched numpy core + Gymnasium envs)."""

from .core import ABRBatchCore, ABRConfig, ABRSession, TraceBank, qoe_parts
from .env import ABREnv, ABREpisodeObs, ABRVectorEnv

__all__ = ["ABRBatchCore", "ABRConfig", "ABRSession", "qoe_parts", "TraceBank", "ABREnv", "ABREpisodeObs", "ABRVectorEnv"]
