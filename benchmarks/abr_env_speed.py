"""Chunk decisions per second: our ABR env vs pensieve-ppo's, and our batched core at batch 1/64/1024.

    MAMBA4NET_DATA=../shared/data python benchmarks/abr_env_speed.py --out results/bench_abr_env.json

Same traces (fcc-test, NetLLM start offsets), same video (video1), test mode (no noise), random
actions drawn up front so policy cost is not timed. pensieve-ppo's env is its ``gym.ABREnv`` over its
``core.Simulator``, with an observer that builds the same Pensieve state matrix as ours (its own
quality-ladder observers need transformers < 5 to import).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.abr import ABRBatchCore, ABREnv  # noqa: E402
from traces import load_abr_traces, load_abr_video  # noqa: E402
from traces.atomic import write_text_atomic  # noqa: E402


def _pensieve_env(trace_dir: Path, video):
    from dataclasses import dataclass

    from pensieve_ppo.core.simulator import Simulator
    from pensieve_ppo.core.trace import TraceSimulator, load_trace
    from pensieve_ppo.core.video.player import ResolvedChunk, VideoChunkRequest, VideoPlayer
    from pensieve_ppo.gym.env import ABREnv as PPOEnv
    from pensieve_ppo.gym.qoe import QoEObserver

    @dataclass(frozen=True)
    class Request(VideoChunkRequest):
        level: int

    @dataclass(frozen=True)
    class Resolved(ResolvedChunk):
        quality: float

    class Player(VideoPlayer):
        total_chunks = video.num_chunks

        def advance_chunk(self, chunk_request, chunk_idx, buffer_size):
            lvl = chunk_request.level
            return int(video.chunk_bytes[lvl, chunk_idx]), video.chunk_s * 1000.0, Resolved(video.bitrates_kbps[lvl] / 1000.0)

    class Observer(QoEObserver):
        def reset(self, env):
            super().reset(env)
            self.state = np.zeros((6, 6), dtype=np.float32)

        def compute_quality(self, env, chunk_request, result):
            return result.resolved_chunk.quality

        def observe(self, env, chunk_request, result):
            qs, reward, info = super().observe(env, chunk_request, result)
            player = env.simulator.video_player
            nxt = [video.chunk_bytes[i, player.video_chunk_counter % video.num_chunks] for i in range(video.levels)]
            s = np.roll(self.state, -1, axis=1)
            s[0, -1] = qs.quality * 1000.0 / max(video.bitrates_kbps)
            s[1, -1] = qs.buffer_size_norm
            s[2, -1] = float(result.video_chunk_size) / float(result.delay) / 1000.0
            s[3, -1] = float(result.delay) / 1000.0 / 10.0
            s[4, :video.levels] = np.array(nxt) / 1e6
            s[5, -1] = min(result.video_chunk_remain, 48) / 48.0
            self.state = s
            return s, reward, info

    sim = Simulator(Player(), TraceSimulator(load_trace(str(trace_dir))))
    return PPOEnv(sim, Observer()), Request


def bench_pensieve(trace_dir, video, actions, chunks):
    env, Request = _pensieve_env(trace_dir, video)
    env.reset(seed=0)
    n = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, _, _ = env.step(Request(int(a)))
        n += 1
        if term:
            env.reset()
    return n / (time.perf_counter() - t0)


def bench_ours_single(ts, video, actions):
    env = ABREnv(ts, video, mode="test")
    env.reset(seed=0)
    n = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, _, _ = env.step(int(a))
        n += 1
        if term:
            env.reset()
    return n / (time.perf_counter() - t0)


def bench_batched(ts, video, batch, episodes, rng):
    core = ABRBatchCore(ts.traces, video, batch)
    tids = np.arange(batch) % len(ts)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(episodes):
        core.reset_rows(np.arange(batch), tids, ts.start_index[tids])
        for _ in range(video.num_chunks - 1):
            core.step(rng.integers(video.levels, size=batch))
            steps += batch
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="single-session decisions to time")
    parser.add_argument("--episodes-scale", type=float, default=1.0, help="scale the batched runs (CI uses a tiny one)")
    parser.add_argument("--out", default="results/bench_abr_env.json")
    args = parser.parse_args()

    ts = load_abr_traces("fcc-test")
    video = load_abr_video("video1")
    from traces.datasets import resolve

    trace_dir = resolve("fcc-test").path
    rng = np.random.default_rng(0)
    actions = rng.integers(video.levels, size=args.steps)

    results = {"pensieve_ppo_single": bench_pensieve(trace_dir, video, actions, video.num_chunks),
               "ours_single": bench_ours_single(ts, video, actions)}
    for batch, episodes in ((1, 200), (64, 20), (1024, 4)):
        episodes = max(1, round(episodes * args.episodes_scale))
        results[f"ours_batched_{batch}"] = bench_batched(ts, video, batch, episodes, rng)
    ratio = {k: v / results["pensieve_ppo_single"] for k, v in results.items()}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    out = {
        "unit": "chunk decisions per second",
        "decisions_per_s": results,
        "ratio_to_pensieve_ppo": ratio,
        "traces": "fcc-test (NetLLM offsets)", "video": "video1",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__},
        "commit": commit, "date": time.strftime("%Y-%m-%d"),
    }
    for k, v in results.items():
        print(f"{k:>24}: {v:12,.0f} decisions/s  ({ratio[k]:6.2f}x pensieve-ppo)")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
