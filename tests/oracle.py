"""pensieve-ppo (PyPI, MIT) as an independent test oracle for the ABR simulator.

We use only its trace simulator (``core.trace``: download, buffer, drain) and its QoE formula
(``gym.qoe.QoEObserver``), configured to our constants and NetLLM's start offsets.
"""

from __future__ import annotations

import numpy as np
from pensieve_ppo.core.trace import TraceSimulator
from pensieve_ppo.core.trace.data import TraceData

from traces.abr import BandwidthTrace, Video


def oracle_rollout(trace: BandwidthTrace, video: Video, start_index: int, levels: list[int], initial_level: int = 0):
    """Roll a fixed level sequence through pensieve-ppo's simulator; first chunk at ``initial_level``.

    Returns a dict of per-chunk arrays (first chunk included): delay_ms, rebuffer_s, buffer_s, qoe.
    """
    data = TraceData(all_cooked_time=[list(map(float, trace.times_s))],
                     all_cooked_bw=[list(map(float, trace.mbps))], all_file_names=[trace.name])
    sim = TraceSimulator(data)
    sim.reset()
    # NetLLM's test mode: start at the trace's offset instead of row 1.
    sim.mahimahi_ptr = int(start_index)
    sim.last_mahimahi_time = sim.cooked_time[sim.mahimahi_ptr - 1]
    out = {"delay_ms": [], "rebuffer_s": [], "buffer_s": [], "qoe": []}
    seq = [initial_level] + list(levels)
    last_q = None
    for chunk, level in enumerate(seq):
        size = int(video.chunk_bytes[level, chunk])
        res = sim.step(size, video.chunk_s * 1000.0)
        q = video.bitrates_kbps[level] / 1000.0
        lq = q if last_q is None else last_q
        # pensieve-ppo QoEObserver.observe, linear: quality - 4.3*rebuf - 1*|quality - last|
        qoe = q - 4.3 * (res.rebuf / 1000.0) - 1.0 * abs(q - lq)
        last_q = q
        out["delay_ms"].append(res.delay)
        out["rebuffer_s"].append(res.rebuf / 1000.0)
        out["buffer_s"].append(res.buffer_size / 1000.0)
        out["qoe"].append(qoe)
    return {k: np.asarray(v) for k, v in out.items()}
