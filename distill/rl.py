"""Train an RL baseline with stable-baselines3 on our envs and save it pickle-free.

    python -m distill.abr ppo --algo ppo [--timesteps 2000000] [--n-envs 8] \\
        [--out agents/pretrained/ppo_abr]
    python -m distill.cjs ppo --algo ppo --timesteps 200000 --jobs 20
    python -m distill.abr ppo --student agents/pretrained/student_abr \\
        --teacher agents/pretrained/teacher_abr --kl-beta 0.5 --lr 1e-5 --ent-coef 0.01 --out runs/student_ppo

ABR: the Pensieve baseline — SB3 PPO (or A2C, Pensieve's own family) with :class:`PensieveExtractor`
on ``ABR-v0`` in training mode (random fcc-train traces and start rows, Pensieve's delay noise),
reward = the per-chunk QoE. CJS: PPO with :class:`CJSGraphExtractor` on ``CJSFlatten(CJS-v0)`` with
shorter workloads (``--jobs``). At the end the policy is evaluated (ABR: ``--eval-traces`` in test
mode; CJS: the held-out seeds at ``--eval-jobs`` jobs) and saved as ``policy.safetensors`` +
``config.json`` (:func:`agents.sb3.save_sb3`). TensorBoard logs with ``--tensorboard DIR``.

``--student FOLDER`` fine-tunes the distilled Mamba student online instead: its encoder and backbone
become the features extractor over :class:`envs.abr.ABREpisodeObs`, its head the action net (so step
0 is the student itself), and ``--teacher FOLDER`` adds DKO's RL term — after each rollout,
``--kl-epochs`` passes of ``β·KL(π_teacher ‖ π)`` on the rollout's states.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

import torch

from agents.checkpoint import parse_dataclass_args
from agents.sb3 import episode_inputs


@dataclass
class RLTraining:
    env: str = "abr"  # abr | cjs (set by the entry point: python -m distill.abr|cjs ppo)
    algo: str = "ppo"  # ppo | a2c
    timesteps: int = 2_000_000
    n_envs: int = 8
    vec: str = "dummy"  # dummy | subproc (one process per env: use on many-core machines)
    traces: str = "fcc-train-clean"  # ABR training traces (a+b for a union, randomized:N for generated links)
    jobs: int = 20  # CJS: jobs per training workload
    n_steps: int = 512  # rollout length per env
    batch_size: int = 1024
    epochs: int = 4
    lr: float = 3e-4
    ent_coef: float = 0.1  # entropy bonus at the start (Pensieve also starts high and decays it)
    ent_coef_final: float = 0.01  # ... linearly down to this at the end
    norm_reward: bool = True  # VecNormalize the rewards (not the observations): ABR rewards span ~[-40, 4]
    gamma: float = 0.99
    seed: int = 0
    device: str = "cpu"
    eval_traces: str = "fcc-valid-clean"  # validation (fcc-test is reported by compare, once)
    eval_jobs: int = 200
    eval_seeds: int = 10
    tensorboard: str = ""
    student: str = ""  # ABR: fine-tune this distilled student (folder) instead of training Pensieve's network
    teacher: str = ""  # ... with an online KL-to-teacher term (teacher folder; DKO's RL form)
    kl_beta: float = 0.5
    kl_epochs: int = 1
    out: str = "agents/pretrained/ppo_abr"


def EntropyDecay(start: float, end: float, total: int):
    """SB3 callback: the entropy coefficient goes linearly from ``start`` to ``end`` over ``total`` steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Decay(BaseCallback):
        def _on_rollout_start(self) -> None:
            frac = min(1.0, self.model.num_timesteps / max(1, total))
            self.model.ent_coef = start + (end - start) * frac

        def _on_step(self) -> bool:
            return True

    return _Decay()


def make_env_fns(args: RLTraining) -> tuple[list, dict]:
    if args.env == "abr":
        from envs.abr import ABREnv
        from traces import load_abr_traces, load_abr_video

        traces, video = load_abr_traces(args.traces), load_abr_video("video1")
        from agents.sb3 import PensieveExtractor, StudentExtractor

        if args.student:  # the student over the episode so far; its head becomes the action net
            from envs.abr import ABREpisodeObs

            kwargs = {"features_extractor_class": StudentExtractor,
                      "features_extractor_kwargs": {"student": args.student}, "net_arch": {"pi": [], "vf": [64]},
                      "ortho_init": False}  # SB3's orthogonal re-init would overwrite the student's weights
            return [lambda: ABREpisodeObs(ABREnv(traces, video, mode="train")) for _ in range(args.n_envs)], kwargs
        kwargs = {"features_extractor_class": PensieveExtractor, "net_arch": {"pi": [64], "vf": [64]}}
        return [lambda: ABREnv(traces, video, mode="train") for _ in range(args.n_envs)], kwargs
    if args.env == "cjs":
        from envs.cjs import CJSConfig, CJSEnv, CJSFlatten

        from agents.sb3 import CJSGraphExtractor, cjs_layout

        probe = CJSFlatten(CJSEnv(CJSConfig(num_jobs=args.jobs)))
        kwargs = {"features_extractor_class": CJSGraphExtractor,
                  "features_extractor_kwargs": {"layout": cjs_layout(probe)}, "net_arch": {"pi": [64], "vf": [64]}}
        return [lambda: CJSFlatten(CJSEnv(CJSConfig(num_jobs=args.jobs))) for _ in range(args.n_envs)], kwargs
    raise SystemExit(f"--env {args.env!r}: use abr or cjs")


def evaluate(args: RLTraining, policy) -> dict:
    from agents.sb3 import SB3EpisodePolicy, SB3Policy

    if args.env == "abr":
        from evaluation.abr import evaluate_abr
        from traces import load_abr_traces, load_abr_video

        agent = SB3EpisodePolicy(policy) if args.student else SB3Policy(policy, "ppo")
        return {args.eval_traces: evaluate_abr(agent, load_abr_traces(args.eval_traces),
                                               load_abr_video("video1")).summary()}
    from envs.cjs import CJSConfig
    from evaluation.cjs import VALIDATION_SEEDS, evaluate_cjs

    from agents.sb3 import SB3CJSPolicy

    run = evaluate_cjs(SB3CJSPolicy(policy), VALIDATION_SEEDS[: args.eval_seeds], CJSConfig(num_jobs=args.eval_jobs))
    return {f"cjs-{args.eval_jobs}-jobs": run.summary()}


def train(args: RLTraining, log=print):
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    from agents.sb3 import save_sb3

    torch.manual_seed(args.seed)
    fns, policy_kwargs = make_env_fns(args)
    venv = VecMonitor(SubprocVecEnv(fns) if args.vec == "subproc" else DummyVecEnv(fns))
    if args.norm_reward:  # reward scaling only: the saved policy needs no statistics at inference
        from stable_baselines3.common.vec_env import VecNormalize

        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=args.gamma)
    venv.seed(args.seed)
    common = dict(policy_kwargs=policy_kwargs, learning_rate=args.lr, ent_coef=args.ent_coef, gamma=args.gamma,
                  seed=args.seed, device=args.device, verbose=0, tensorboard_log=args.tensorboard or None)
    if args.algo == "ppo":
        model = PPO("MlpPolicy", venv, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.epochs, **common)
    elif args.algo == "a2c":
        model = A2C("MlpPolicy", venv, n_steps=args.n_steps // 16 or 5, **common)
    else:
        raise SystemExit(f"--algo {args.algo!r}: use ppo or a2c")
    callbacks = [EntropyDecay(args.ent_coef, args.ent_coef_final, args.timesteps)]
    metrics_before = None
    if args.student:
        init_action_net_from_student(model)
        if args.env == "abr" and args.eval_traces:
            model.policy.eval()
            metrics_before = evaluate(args, model.policy)
            model.policy.train()
            log(f"before fine-tuning: {json.dumps(metrics_before)}")
    if args.teacher:
        from agents.teacher import load_teacher

        if not args.student:
            raise SystemExit("--teacher needs --student (the KL term is on the student's episode observations)")
        teacher, _ = load_teacher(args.teacher, device=str(model.policy.device))
        kl_callback = TeacherKLCallback(lambda obs: teacher_episode_logits(teacher, obs), args.kl_beta, args.kl_epochs)
        callbacks.append(kl_callback)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, progress_bar=False, callback=callbacks)
    seconds = time.perf_counter() - t0
    ep_rewards = [ep["r"] for ep in model.ep_info_buffer] if model.ep_info_buffer else []
    venv.close()
    metrics = {"train_seconds": seconds, "timesteps": int(model.num_timesteps),
               "before_fine_tuning": metrics_before,
               "teacher_kl": kl_callback.kl_history if args.teacher else None,
               "recent_episode_reward": float(np.mean(ep_rewards)) if ep_rewards else None}
    model.policy.eval()
    if args.eval_traces or args.env == "cjs":
        metrics["eval"] = evaluate(args, model.policy)
        log(f"eval: {json.dumps(metrics['eval'])}")
    save_sb3(model, args.out, policy_kwargs, {"env": args.env, "args": asdict(args), "metrics": metrics})
    return model, metrics


def main(argv=None, env: str = "abr") -> None:
    """``python -m distill.{abr,cjs} ppo``: the RL baseline of one task."""
    args = parse_dataclass_args(RLTraining, argv, f"python -m distill.{env} ppo", __doc__, fixed={"env": env})
    _, metrics = train(args)
    print(json.dumps(metrics, indent=2, default=float))


# ------------------------------------------------------------- the distilled student inside PPO

def init_action_net_from_student(model) -> None:
    """Copy the student's head into the PPO policy's action net (same shapes: d_model -> levels)."""
    ext = model.policy.pi_features_extractor if not model.policy.share_features_extractor else model.policy.features_extractor
    with torch.no_grad():
        model.policy.action_net.weight.copy_(ext.student.head.weight)
        model.policy.action_net.bias.copy_(ext.student.head.bias)


def teacher_episode_logits(teacher, obs: torch.Tensor) -> torch.Tensor:
    """The teacher's logits at the current decision of each ``ABREpisodeObs`` row (its own window of
    the last ``W`` decisions; returns-to-go zero as for a teacher trained with condition 'none')."""
    cfg = teacher.cfg
    states, prev, t, current = episode_inputs(obs, cfg.levels, cfg.history)
    B, W = obs.shape[0], cfg.window
    idx = current[:, None] + torch.arange(-W + 1, 1, device=obs.device)[None]  # (B, W)
    valid = idx >= 0
    idx = idx.clamp(min=0)
    take = lambda x: torch.gather(x, 1, idx.view(B, W, *([1] * (x.dim() - 2))).expand(B, W, *x.shape[2:]))  # noqa: E731
    # the teacher's action token at step k is the level chosen at k = the student's "previous" at k + 1
    nxt = torch.cat([prev[:, 1:], torch.full_like(prev[:, :1], cfg.levels)], 1)
    actions = torch.where(valid, take(nxt), torch.full_like(idx, cfg.levels))
    actions[:, -1] = cfg.levels  # not chosen yet
    states_w = take(states) * valid[..., None, None]
    times = torch.where(valid, take(t), torch.zeros_like(idx))
    returns = torch.zeros(B, W, dtype=obs.dtype, device=obs.device)
    return teacher(returns, states_w, actions, times, valid.long())[:, -1]


def TeacherKLCallback(teacher_logits_fn, beta: float = 0.5, epochs: int = 1, batch_size: int = 256):
    """DKO's RL form, online: after each PPO rollout, ``epochs`` passes of
    ``β·KL(π_teacher(·|s) ‖ π(·|s))`` over the states of that rollout (the policy's own optimizer), so
    the fine-tuned student stays close to the teacher on the states it visits. Logs ``train/teacher_kl``."""
    import torch.nn.functional as F
    from stable_baselines3.common.callbacks import BaseCallback

    class _KL(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            buf, policy = self.model.rollout_buffer, self.model.policy
            obs = torch.as_tensor(buf.observations.reshape(-1, *buf.obs_shape), device=policy.device)
            with torch.no_grad():
                target = torch.cat([teacher_logits_fn(obs[i:i + batch_size]) for i in range(0, len(obs), batch_size)])
                target = F.log_softmax(target.float(), -1)
            total, n = 0.0, 0
            for _ in range(epochs):
                for i in torch.randperm(len(obs)).split(batch_size):
                    logits = policy.get_distribution(obs[i]).distribution.logits
                    kl = F.kl_div(F.log_softmax(logits, -1), target[i], log_target=True, reduction="batchmean")
                    policy.optimizer.zero_grad()
                    (beta * kl).backward()
                    torch.nn.utils.clip_grad_norm_(policy.parameters(), self.model.max_grad_norm)
                    policy.optimizer.step()
                    total, n = total + float(kl.detach()) * len(i), n + len(i)
            self.logger.record("train/teacher_kl", total / max(n, 1))
            self.kl_history.append(total / max(n, 1))

    cb = _KL()
    cb.kl_history = []  # mean KL of each post-rollout pass, for the run's metrics
    return cb

