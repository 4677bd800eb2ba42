"""Cluster job scheduling: Decima-semantics Spark simulator on TPC-H DAGs and its Gymnasium env."""

from .core import CJSConfig, SparkSim
from .env import CJSEnv, CJSFlatten

__all__ = ["CJSConfig", "SparkSim", "CJSEnv", "CJSFlatten"]
