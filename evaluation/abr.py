"""Closed-loop ABR evaluation: any :class:`agents.Policy` over a whole trace set in batched passes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.abr import ABRConfig, ABRVectorEnv
from traces.abr import TraceSet, Video

RECORDED = ("qoe", "qoe_bitrate", "qoe_rebuffer", "qoe_smooth", "rebuffer_s", "bitrate_kbps", "level", "buffer_s")


@dataclass
class ABRRun:
    """Per-trace, per-decision records of one agent on one trace set (first chunk excluded)."""

    agent: str
    trace_names: list[str]
    records: dict[str, np.ndarray]  # name -> (traces, decisions)
    meta: dict = field(default_factory=dict)

    @property
    def per_trace_qoe(self) -> np.ndarray:
        return self.records["qoe"].mean(axis=1)

    def summary(self, mask: np.ndarray | None = None) -> dict[str, float]:
        """Table row. Mean QoE pools every decision of every trace (NetLLM's number)."""
        rec = self.records if mask is None else {k: v[mask] for k, v in self.records.items()}
        per_trace = rec["qoe"].mean(axis=1)
        p10, p50, p90 = np.percentile(per_trace, [10, 50, 90])
        return {
            "traces": int(rec["qoe"].shape[0]),
            "qoe": float(rec["qoe"].mean()),
            "bitrate_mbps": float(rec["bitrate_kbps"].mean() / 1000.0),
            "rebuffer_s": float(rec["rebuffer_s"].mean()),
            "smooth_mbps": float(rec["qoe_smooth"].mean()),
            "qoe_p10": float(p10),
            "qoe_p50": float(p50),
            "qoe_p90": float(p90),
        }


def evaluate_abr(policy, traces: TraceSet, video: Video, config: ABRConfig = ABRConfig(), history: int = 6,
                 initial_level: int = 0, batch_size: int = 512, progress=None, start_index=None,
                 keep_obs: bool = False) -> ABRRun:
    """Run ``policy`` once on every trace of ``traces`` in test mode (start offsets, no noise).

    Traces are played in batches of ``batch_size`` sessions stepped together; every session of a
    batch streams the same video, so they finish together. ``progress`` is an optional callable
    ``progress(n_decisions)`` (a tqdm ``update``). ``start_index`` overrides the traces' start rows.
    ``keep_obs`` also records observations and actions (for experience pools).
    """
    n = len(traces)
    steps = video.num_chunks - 1
    records = {k: np.zeros((n, steps)) for k in RECORDED}
    starts = traces.start_index if start_index is None else np.asarray(start_index, dtype=np.int64)
    if keep_obs:
        records["obs"] = np.zeros((n, steps + 1, 6, history), dtype=np.float32)
        records["action"] = np.zeros((n, steps), dtype=np.int64)
    policy.reset(seed=0)
    for lo in range(0, n, batch_size):
        ids = np.arange(lo, min(n, lo + batch_size))
        env = ABRVectorEnv(len(ids), traces, video, mode="test", history=history,
                           initial_level=initial_level, config=config)
        obs, info = env.reset(seed=0, options={"trace_index": ids, "start_index": starts[ids]})
        for t in range(steps):
            actions = np.asarray(policy.act_batch(obs, info), dtype=np.int64)
            if keep_obs:
                records["obs"][ids, t] = obs
                records["action"][ids, t] = actions
            obs, reward, terminated, _, info = env.step(actions)
            for k in RECORDED:
                records[k][ids, t] = info[k]
            if progress is not None:
                progress(len(ids))
        if keep_obs:
            records["obs"][ids, steps] = obs
        if not terminated.all():  # pragma: no cover - guarded by the env's fixed episode length
            raise RuntimeError("sessions of one batch did not finish together")
    return ABRRun(getattr(policy, "name", type(policy).__name__), traces.names, records,
                  meta={"video": video.name, "history": history, "initial_level": initial_level,
                        "config": config.__dict__.copy(), "traces": traces.name})
