"""Train an RL baseline with stable-baselines3 on our envs and save it pickle-free.

    python -m agents.train_rl --env abr --algo ppo [--timesteps 2000000] [--n-envs 16] \\
        [--out agents/pretrained/ppo_abr]
    python -m agents.train_rl --env cjs --algo ppo --timesteps 200000 --jobs 20

ABR: the Pensieve baseline — SB3 PPO (or A2C, Pensieve's own family) with :class:`PensieveExtractor`
on ``ABR-v0`` in training mode (random fcc-train traces and start rows, Pensieve's delay noise),
reward = the per-chunk QoE. CJS: PPO with :class:`CJSGraphExtractor` on ``CJSFlatten(CJS-v0)`` with
shorter workloads (``--jobs``). At the end the policy is evaluated (ABR: ``--eval-traces`` in test
mode; CJS: the held-out seeds at ``--eval-jobs`` jobs) and saved as ``policy.safetensors`` +
``config.json`` (:func:`agents.sb3.save_sb3`). TensorBoard logs with ``--tensorboard DIR``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .checkpoint import parse_dataclass_args


@dataclass
class Args:
    env: str = "abr"  # abr | cjs
    algo: str = "ppo"  # ppo | a2c
    timesteps: int = 2_000_000
    n_envs: int = 16
    vec: str = "dummy"  # dummy | subproc (one process per env: use on many-core machines)
    traces: str = "fcc-train"  # ABR training traces
    jobs: int = 20  # CJS: jobs per training workload
    n_steps: int = 256  # rollout length per env
    batch_size: int = 1024
    epochs: int = 4
    lr: float = 3e-4
    ent_coef: float = 0.01
    gamma: float = 0.99
    seed: int = 0
    device: str = "cpu"
    eval_traces: str = "fcc-test"
    eval_jobs: int = 200
    eval_seeds: int = 10
    tensorboard: str = ""
    out: str = "agents/pretrained/ppo_abr"


def make_env_fns(args: Args) -> tuple[list, dict]:
    if args.env == "abr":
        from envs.abr import ABREnv
        from traces import load_abr_traces, load_abr_video

        traces, video = load_abr_traces(args.traces), load_abr_video("video1")
        from .sb3 import PensieveExtractor

        kwargs = {"features_extractor_class": PensieveExtractor, "net_arch": {"pi": [64], "vf": [64]}}
        return [lambda: ABREnv(traces, video, mode="train") for _ in range(args.n_envs)], kwargs
    if args.env == "cjs":
        from envs.cjs import CJSConfig, CJSEnv, CJSFlatten

        from .sb3 import CJSGraphExtractor, cjs_layout

        probe = CJSFlatten(CJSEnv(CJSConfig(num_jobs=args.jobs)))
        kwargs = {"features_extractor_class": CJSGraphExtractor,
                  "features_extractor_kwargs": {"layout": cjs_layout(probe)}, "net_arch": {"pi": [64], "vf": [64]}}
        return [lambda: CJSFlatten(CJSEnv(CJSConfig(num_jobs=args.jobs))) for _ in range(args.n_envs)], kwargs
    raise SystemExit(f"--env {args.env!r}: use abr or cjs")


def evaluate(args: Args, policy) -> dict:
    from .sb3 import SB3Policy

    if args.env == "abr":
        from evaluation.abr import evaluate_abr
        from traces import load_abr_traces, load_abr_video

        return {args.eval_traces: evaluate_abr(SB3Policy(policy, "ppo"), load_abr_traces(args.eval_traces),
                                               load_abr_video("video1")).summary()}
    from envs.cjs import CJSConfig
    from evaluation.cjs import HELD_OUT_SEEDS, evaluate_cjs

    from .sb3 import SB3CJSPolicy

    run = evaluate_cjs(SB3CJSPolicy(policy), HELD_OUT_SEEDS[: args.eval_seeds], CJSConfig(num_jobs=args.eval_jobs))
    return {f"cjs-{args.eval_jobs}-jobs": run.summary()}


def train(args: Args, log=print):
    import torch
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    from .sb3 import save_sb3

    torch.manual_seed(args.seed)
    fns, policy_kwargs = make_env_fns(args)
    venv = VecMonitor(SubprocVecEnv(fns) if args.vec == "subproc" else DummyVecEnv(fns))
    venv.seed(args.seed)
    common = dict(policy_kwargs=policy_kwargs, learning_rate=args.lr, ent_coef=args.ent_coef, gamma=args.gamma,
                  seed=args.seed, device=args.device, verbose=0, tensorboard_log=args.tensorboard or None)
    if args.algo == "ppo":
        model = PPO("MlpPolicy", venv, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.epochs, **common)
    elif args.algo == "a2c":
        model = A2C("MlpPolicy", venv, n_steps=args.n_steps // 16 or 5, **common)
    else:
        raise SystemExit(f"--algo {args.algo!r}: use ppo or a2c")
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, progress_bar=False)
    seconds = time.perf_counter() - t0
    ep_rewards = [ep["r"] for ep in model.ep_info_buffer] if model.ep_info_buffer else []
    venv.close()
    metrics = {"train_seconds": seconds, "timesteps": int(model.num_timesteps),
               "recent_episode_reward": float(np.mean(ep_rewards)) if ep_rewards else None}
    model.policy.eval()
    if args.eval_traces or args.env == "cjs":
        metrics["eval"] = evaluate(args, model.policy)
        log(f"eval: {json.dumps(metrics['eval'])}")
    from distill.pool import _code_version

    save_sb3(model, args.out, policy_kwargs, {"env": args.env, "args": asdict(args), "metrics": metrics,
                                             "code_version": _code_version(),
                                             "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    return model, metrics


def main(argv=None) -> None:
    args = parse_dataclass_args(Args, argv, "python -m agents.train_rl", __doc__)
    _, metrics = train(args)
    print(json.dumps(metrics, indent=2, default=float))


if __name__ == "__main__":
    main()
