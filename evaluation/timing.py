"""Timing on one device: per-call latency with inputs staged off the clock, CUDA-graph capture, optional
``torch.compile``, and the parameter bytes of a model. Used by :mod:`evaluation.bench`."""

from __future__ import annotations

import time

import numpy as np
import torch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, iters: int, warmup: int = 3, stage=None) -> list[float]:
    """Latency of ``fn(i)`` per call; ``stage(i)`` (writing the next inputs) runs before the clock starts,
    so that every model is timed on its forward alone (the teacher's inputs are staged the same way)."""
    for _ in range(warmup):
        if stage is not None:
            stage(0)
        fn(0)
    _sync(device)
    out = []
    for i in range(iters):
        if stage is not None:
            stage(i)
            _sync(device)
        t0 = time.perf_counter()
        fn(i)
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def _summary(lat: list[float], batch: int) -> dict:
    lat_ms = np.asarray(lat) * 1e3
    med = float(np.median(lat_ms))
    return {"batch": batch, "latency_ms_median": med, "latency_ms_p99": float(np.percentile(lat_ms, 99)),
            "decisions_per_s": batch / (med / 1e3), "samples": len(lat)}


def _graph(fn, device):
    """Capture ``fn()`` (static inputs/outputs, in-place state) in a CUDA graph; returns replay."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph.replay, out


def _runner(fn, device, use_graph: bool, eager: str):
    """``fn`` captured in a CUDA graph when asked and possible, else ``fn`` itself; and the path that
    will run (a failed capture is reported, and the benchmark goes on eagerly)."""
    if not use_graph:
        return fn, eager
    try:
        replay, _ = _graph(fn, device)
        return replay, f"cuda-graph{eager.removeprefix('eager')}"
    except Exception as err:  # noqa: BLE001 - report the fallback, keep benchmarking
        return fn, f"{eager} (graph capture failed: {type(err).__name__}: {str(err)[:200]})"


def _compile(fn):
    """``torch.compile`` without its own CUDA graphs (the caller captures one around the call)."""
    return torch.compile(fn, dynamic=False)  # default mode: fusion, no autotuning, no CUDA graphs of its own


def _guard(fn, *args, **kwargs) -> dict:
    """Run one measurement; a failure (e.g. a compiler error) becomes a reported row, not a crash."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - report and go on with the other rows
        b = args[1] if len(args) > 1 and isinstance(args[1], int) else kwargs.get("batch", 0)
        return {"batch": b, "failed": f"{type(err).__name__}: {str(err)[:300]}", "decisions_per_s": 0.0,
                "latency_ms_median": float("nan"), "latency_ms_p99": float("nan"), "path": "failed"}


def bench_forward(model, inputs, batch: int, device, use_graph: bool, compiled: bool, iters: int = 48) -> dict:
    """One-shot forward of ``model`` on ``inputs`` (a tensor or a dict of them) for a batch: VP's
    prediction, CJS's scheduling decision. CUDA-graph captured when asked, optionally compiled."""
    core = _compile(model) if compiled else model

    def forward():
        return core(inputs)

    with torch.no_grad():
        run, path = _runner(forward, device, use_graph, "eager (compiled)" if compiled else "eager")
        lat = _time(lambda i: run(), device, iters=iters)
    return {**_summary(lat, batch), "path": path}


def param_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())
