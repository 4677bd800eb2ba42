"""Synthetic data: Markov bandwidth traces and a synthetic video ladder.

The offline fallback (no data installed) and a source for fuzzing. Every generator takes a
``numpy.random.Generator`` so callers own the randomness.
"""

from __future__ import annotations

import numpy as np

from .abr import DEFAULT_BITRATES_KBPS, DEFAULT_CHUNK_S, DEFAULT_TOTAL_CHUNKS, BandwidthTrace, TraceSet, Video


def markov_bandwidth_trace(
    rng: np.random.Generator,
    duration_s: float = 400.0,
    step_s: float = 1.0,
    min_mbps: float = 0.2,
    max_mbps: float = 6.0,
    num_states: int = 10,
    stay_prob: float = 0.9,
    noise_frac: float = 0.1,
    name: str = "synthetic",
) -> BandwidthTrace:
    """A bandwidth trace from a Markov chain over log-spaced mean bandwidths.

    The generative model of Pensieve's synthetic traces (Mao et al. 2017, §5.1): the link holds a
    mean bandwidth state for a geometrically distributed time (``stay_prob`` per step), then jumps to
    another state with probability decaying with distance (closer states likelier); each sample is
    the state's mean plus Gaussian noise of ``noise_frac`` of the mean, clipped at 5% of it.
    """
    if not 0.0 <= stay_prob < 1.0:
        raise ValueError("stay_prob must be in [0, 1)")
    states = np.geomspace(min_mbps, max_mbps, num_states)
    n = int(duration_s / step_s) + 1
    s = int(rng.integers(num_states))
    idx = np.arange(num_states)
    mbps = np.empty(n)
    for i in range(n):
        if i > 0 and rng.random() > stay_prob:
            dist = np.abs(idx - s).astype(np.float64)
            dist[s] = np.inf  # never 'jump' to the state we are in
            weights = 1.0 / dist
            weights /= weights.sum()
            s = int(rng.choice(num_states, p=weights))
        mean = states[s]
        mbps[i] = max(mean + rng.normal(0.0, noise_frac * mean), 0.05 * mean)
    times = np.arange(n, dtype=np.float64) * step_s
    return BandwidthTrace(name=name, times_s=times, mbps=mbps, source="synthetic")


def randomized_bandwidth_trace(rng: np.random.Generator, duration_s: float = 400.0, name: str = "randomized",
                               low_mbps: float = 0.2, high_mbps: float = 10.0) -> BandwidthTrace:
    """One draw of a domain-randomisation family of links, for training that must generalise beyond FCC.

    Per trace, drawn once: a regime count (1–4) and for each regime a mean bandwidth log-uniform in
    [``low_mbps``, ``high_mbps``], a volatility (relative noise 2–60%), a step (0.5–5 s, as sampling
    periods of real logs differ) and a correlation (AR(1) coefficient 0–0.95); regimes switch at uniform
    times; outages (bandwidth near 0 for 1–8 s) arrive at a rate of 0–0.02 per second. Bandwidth stays
    above 1% of the regime's mean except in outages (1 kbps there, so a trace always delivers)."""
    regimes = int(rng.integers(1, 5))
    cuts = np.sort(rng.uniform(0.0, duration_s, regimes - 1))
    edges = np.concatenate([[0.0], cuts, [duration_s]])
    times, values = [0.0], []
    for r in range(regimes):
        mean = float(np.exp(rng.uniform(np.log(low_mbps), np.log(high_mbps))))
        vol, step, rho = rng.uniform(0.02, 0.6), rng.uniform(0.5, 5.0), rng.uniform(0.0, 0.95)
        t, z = edges[r], 0.0
        while t < edges[r + 1]:
            z = rho * z + np.sqrt(1 - rho * rho) * rng.normal()
            t = min(t + step, edges[r + 1])
            times.append(t)
            values.append(max(mean * (1.0 + vol * z), 0.01 * mean))
    times, mbps = np.asarray(times), np.asarray([values[0]] + values)
    rate = rng.uniform(0.0, 0.02)
    for start in rng.uniform(0.0, duration_s, rng.poisson(rate * duration_s)):
        mbps[(times >= start) & (times < start + rng.uniform(1.0, 8.0))] = 1e-3
    return BandwidthTrace(name=name, times_s=times, mbps=mbps, source="randomized")


def randomized_trace_set(rng: np.random.Generator, count: int = 200, **kwargs) -> TraceSet:
    """``count`` draws of :func:`randomized_bandwidth_trace`, starting at row 1."""
    return TraceSet([randomized_bandwidth_trace(rng, name=f"randomized_{i:04d}", **kwargs) for i in range(count)],
                    name="randomized", synthetic=True)


def synthetic_trace_set(rng: np.random.Generator, count: int = 20, **kwargs) -> TraceSet:
    """``count`` Markov traces, starting at row 1 (Pensieve's default)."""
    traces = [markov_bandwidth_trace(rng, name=f"synthetic_{i:03d}", **kwargs) for i in range(count)]
    return TraceSet(traces, name="synthetic", synthetic=True)


def synthetic_video(
    rng: np.random.Generator,
    bitrates_kbps=DEFAULT_BITRATES_KBPS,
    num_chunks: int = DEFAULT_TOTAL_CHUNKS,
    chunk_s: float = DEFAULT_CHUNK_S,
    vbr_frac: float = 0.15,
) -> Video:
    """Chunk sizes ``bitrate·chunk_s/8`` with one shared per-chunk complexity factor (VBR-like)."""
    complexity = np.clip(rng.normal(1.0, vbr_frac, size=num_chunks), 0.5, 1.5)
    kbps = np.asarray(bitrates_kbps, dtype=np.float64)[:, None]
    chunk_bytes = np.round(kbps * 1000.0 / 8.0 * chunk_s * complexity[None, :]).astype(np.int64)
    return Video(tuple(int(b) for b in bitrates_kbps), chunk_bytes, chunk_s, name="synthetic")
