"""Trace and workload data: formats, named datasets, pinned downloads, synthetic generators.

Imports numpy only (never torch)."""

from .abr import (
    DEFAULT_BITRATES_KBPS,
    DEFAULT_CHUNK_S,
    DEFAULT_TOTAL_CHUNKS,
    BandwidthTrace,
    TraceSet,
    Video,
    load_cooked_trace,
    load_mahimahi_trace,
    load_start_offsets,
    load_trace_dir,
    load_video,
)
from .datasets import dataset_names, download_dataset, duplicate_mask, load_abr_traces, load_abr_video, resolve
from .errors import ChecksumError, DatasetNotFoundError, TraceFormatError
from .synthetic import (markov_bandwidth_trace, randomized_bandwidth_trace, randomized_trace_set, synthetic_trace_set,
                        synthetic_video)

__all__ = [
    "randomized_bandwidth_trace", "randomized_trace_set",
    "DEFAULT_BITRATES_KBPS", "DEFAULT_CHUNK_S", "DEFAULT_TOTAL_CHUNKS", "BandwidthTrace", "TraceSet", "Video",
    "load_cooked_trace", "load_mahimahi_trace", "load_start_offsets", "load_trace_dir", "load_video",
    "dataset_names", "download_dataset", "duplicate_mask", "load_abr_traces", "load_abr_video", "resolve",
    "ChecksumError", "DatasetNotFoundError", "TraceFormatError",
    "markov_bandwidth_trace", "synthetic_trace_set", "synthetic_video",
]
