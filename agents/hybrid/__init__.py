"""The hybrid Mamba-2 + attention backbone shared by every student: ops → mixers → backbone, and the
optional fused Triton kernels beside them (imported only where used)."""

from .backbone import FusedInference, HybridBackbone, HybridConfig, HybridShape, count_parameters
from .mixers import AttentionMixer, MambaMixer
from .ops import ONE_CHUNK_MAX, RMSNorm, ssd_scan

__all__ = ["AttentionMixer", "FusedInference", "HybridBackbone", "HybridConfig", "HybridShape", "MambaMixer",
           "ONE_CHUNK_MAX", "RMSNorm", "count_parameters", "ssd_scan"]
