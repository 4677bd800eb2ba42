"""stable-baselines3 bridges: features extractors, Policy <-> SB3 adapters, pickle-free checkpoints.

* :class:`PensieveExtractor` — Pensieve's ABR state network (1-D convs over throughput, download
  time and next chunk sizes; linear layers over the last bitrate, buffer and chunks left) as an SB3
  ``BaseFeaturesExtractor`` for ``mamba4net/ABR-v0``:
  ``PPO("MlpPolicy", env, policy_kwargs=dict(features_extractor_class=PensieveExtractor))``.
* :class:`CJSGraphExtractor` — message passing over the job DAGs of a :class:`envs.cjs.CJSFlatten`
  observation (it un-flattens the vector with the layout the wrapper reports).
* :class:`SB3Policy` — any SB3 model as a :class:`agents.base.Policy` (deterministic ``predict``).
* :func:`policy_as_sb3` — any Policy as something ``stable_baselines3.common.evaluation.evaluate_policy``
  accepts; it reads the per-env ``info`` dicts our policies need from the (Dummy)VecEnv it wraps.
* :func:`save_sb3` / :func:`load_sb3` — the policy network as ``policy.safetensors`` + ``config.json``
  (algorithm, policy kwargs by name, spaces). SB3's own ``.zip`` holds pickles; we never write one.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from traces.atomic import staged_dir

from .base import BatchPolicy
from .checkpoint import CheckpointError, check_finite, check_weights, file_sha256, provenance, read_meta


class PensieveExtractor(BaseFeaturesExtractor):
    """Pensieve's actor/critic trunk (Mao et al. 2017): 128-filter 1-D convs (kernel 4) over the
    throughput / download-time histories and the next chunk sizes, 128-unit linears over the scalars."""

    def __init__(self, observation_space: gym.spaces.Box, width: int = 128, levels: int = 6):
        from .teacher import add_pensieve_layers, pensieve_width

        rows, history = observation_space.shape
        super().__init__(observation_space, features_dim=pensieve_width(history, levels, width))
        add_pensieve_layers(self, history, levels, width)
        self.act = nn.ReLU()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        from .teacher import pensieve_features

        return self.act(pensieve_features(self, obs))


class CJSGraphExtractor(BaseFeaturesExtractor):
    """Decima-flavoured GNN over a flattened ``CJS-v0`` observation: stage embeddings, ``rounds`` of
    child -> parent messages along each job's DAG, job and global mean-pooling. Features = [global
    summary, one score per stage slot] so the action head can address slots directly."""

    def __init__(self, observation_space: gym.spaces.Box, layout: dict, hidden: int = 32, rounds: int = 4):
        J, S = layout["node_features"][0], layout["node_features"][1]
        super().__init__(observation_space, features_dim=hidden + J * S)
        self.layout = {k: tuple(v) for k, v in layout.items()}
        self.rounds = rounds
        F, G = layout["node_features"][2], layout["job_features"][1]
        self.node_in = nn.Sequential(nn.Linear(F, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden))
        self.msg = nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU())
        self.job = nn.Sequential(nn.Linear(hidden + G, hidden), nn.LeakyReLU())
        self.glob = nn.Sequential(nn.Linear(hidden, hidden), nn.LeakyReLU())
        self.score = nn.Linear(3 * hidden, 1)

    def _split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, i = {}, 0
        for k, shape in self.layout.items():
            n = int(np.prod(shape))
            out[k] = flat[:, i:i + n].reshape(-1, *shape)
            i += n
        return out

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        o = self._split(obs)
        x, adj = o["node_features"], o["adjacency"]  # (B, J, S, F), (B, J, S, S) parent -> child
        B, J, S, _ = x.shape
        h0 = self.node_in(x)
        h = h0
        for _ in range(self.rounds):  # a parent gathers its children's messages
            h = h0 + torch.einsum("bjpc,bjch->bjph", adj, self.msg(h))
        present = o["job_features"][..., :1]
        job = self.job(torch.cat([h.mean(2), o["job_features"]], -1)) * present  # (B, J, H)
        glob = self.glob(job.sum(1) / present.sum(1).clamp(min=1))  # (B, H)
        scores = self.score(torch.cat([h, job[:, :, None].expand(-1, -1, S, -1),
                                       glob[:, None, None].expand(-1, J, S, -1)], -1)).reshape(B, J * S)
        return torch.cat([glob, scores], -1)


def cjs_layout(env) -> dict[str, list[int]]:
    """The flattening order and shapes of a ``CJSFlatten``-wrapped env's Dict observation."""
    inner = env.unwrapped.observation_space
    return {k: list(inner[k].shape) for k in inner.spaces}


class SB3Policy(BatchPolicy):
    """An SB3 model (anything with ``predict``) behind the :class:`Policy` protocol (obs only)."""

    def __init__(self, model, name: str = "sb3", deterministic: bool = True):
        self.model, self.name, self.deterministic = model, name, deterministic
        self.reset()

    def act_batch(self, obs, info):
        actions, _ = self.model.predict(np.asarray(obs, dtype=np.float32), deterministic=self.deterministic)
        return np.asarray(actions)


class _PolicyPredictor:
    """``predict`` for SB3's ``evaluate_policy``: runs a :class:`Policy` on a DummyVecEnv's infos."""

    def __init__(self, policy, vec_env):
        self.policy, self.vec_env = policy, vec_env
        self.steps = np.zeros(vec_env.num_envs, dtype=np.int64)
        policy.reset(seed=0)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n = self.vec_env.num_envs
        start = np.ones(n, bool) if episode_start is None else np.asarray(episode_start, bool)
        self.steps = np.where(start, 0, self.steps + 1)
        infos = [dict(self.vec_env.reset_infos[i] if start[i] else self.vec_env.buf_infos[i]) for i in range(n)]
        keys = [k for k, v in infos[0].items() if np.isscalar(v) and not isinstance(v, str)]
        info = {k: np.asarray([inf.get(k, 0) for inf in infos]) for k in keys}
        info["step"] = self.steps.copy()  # the env counts steps; a fresh episode is step 0
        return np.asarray(self.policy.act_batch(np.asarray(observation), info)), state


def policy_as_sb3(policy, vec_env) -> _PolicyPredictor:
    """Wrap a :class:`Policy` so ``evaluate_policy(policy_as_sb3(p, venv), venv)`` works (DummyVecEnv:
    the policy gets the same per-env ``info`` it would get from our own evaluation loop)."""
    if not hasattr(vec_env, "buf_infos") or not hasattr(vec_env, "reset_infos"):
        raise TypeError("policy_as_sb3 needs a stable_baselines3 DummyVecEnv (it reads buf_infos/reset_infos)")
    return _PolicyPredictor(policy, vec_env)


def _extractors() -> dict:
    return {"PensieveExtractor": PensieveExtractor, "CJSGraphExtractor": CJSGraphExtractor,
            "StudentExtractor": StudentExtractor}


def _space_spec(space) -> dict:
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "low": float(np.min(space.low)), "high": float(np.max(space.high))}
    raise TypeError(f"cannot describe space {space}")


def _space(spec: dict):
    if spec["type"] == "Discrete":
        return gym.spaces.Discrete(spec["n"])
    if spec["type"] == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(spec["nvec"])
    return gym.spaces.Box(spec["low"], spec["high"], tuple(spec["shape"]), np.float32)


def save_sb3(model, folder: str | Path, policy_kwargs: dict, extra: dict) -> Path:
    """Policy weights as safetensors + JSON (algorithm, policy kwargs with extractor by name, spaces)."""
    from safetensors.torch import save_model

    kwargs = dict(policy_kwargs)
    if "features_extractor_class" in kwargs:
        kwargs["features_extractor_class"] = kwargs["features_extractor_class"].__name__
    config = {"model": "sb3", "algo": type(model).__name__, "policy": type(model.policy).__name__,
              "policy_kwargs": kwargs, "observation_space": _space_spec(model.observation_space),
              "action_space": _space_spec(model.action_space), **extra, **provenance()}
    with staged_dir(folder) as tmp:
        save_model(model.policy, str(tmp / "policy.safetensors"))  # de-duplicates the shared extractor
        config["weights_sha256"] = file_sha256(tmp / "policy.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=float) + "\n")
    return Path(folder)


def load_sb3(folder: str | Path, device: str = "cpu"):
    """Rebuild the SB3 policy from :func:`save_sb3`'s files; returns ``(policy, config)`` — the policy
    has SB3's ``predict`` and is what :class:`SB3Policy` wraps."""
    from safetensors.torch import load_model
    from stable_baselines3.common.policies import ActorCriticPolicy

    folder = Path(folder)
    config = read_meta(folder, "python -m distill.abr ppo")
    if config.get("model") != "sb3":
        raise CheckpointError(f"{folder}: holds a {config.get('model')!r} checkpoint, expected an SB3 policy ('sb3')")
    check_weights(folder, config, "policy.safetensors")
    try:
        kwargs = dict(config["policy_kwargs"])
        if "features_extractor_class" in kwargs:
            name = kwargs["features_extractor_class"]
            if name not in _extractors():
                raise CheckpointError(f"{folder}/config.json: unknown features extractor {name!r}")
            kwargs["features_extractor_class"] = _extractors()[name]
        policy = ActorCriticPolicy(_space(config["observation_space"]), _space(config["action_space"]),
                                   lambda _: 0.0, **kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}/config.json: not an SB3 policy description ({type(exc).__name__}: {exc})") \
            from None
    try:
        load_model(policy, str(folder / "policy.safetensors"))
    except Exception as exc:  # missing, corrupt or mismatched weights
        raise CheckpointError(f"{folder}/policy.safetensors: does not load into the policy ({exc})") from None
    check_finite(folder, policy.state_dict())
    return policy.to(device).eval(), config


class SB3CJSPolicy(BatchPolicy):
    """An SB3 policy trained on ``CJSFlatten(CJS-v0)`` acting on the raw env's Dict observation (it
    flattens in the wrapper's order and maps the stage component onto the schedulable slots the same way)."""

    name = "ppo-cjs"

    def __init__(self, model, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic
        self.reset()

    def act(self, obs, info=None):
        flat = np.concatenate([np.asarray(obs[k], np.float32).ravel() for k in obs])
        a, _ = self.model.predict(flat[None], deterministic=self.deterministic)
        a = np.asarray(a).reshape(-1)
        mask = np.asarray(obs["stage_mask"])
        valid = np.flatnonzero(mask[:-1])
        slot = int(valid[a[0] % len(valid)]) if len(valid) else len(mask) - 1
        return np.asarray([slot, a[1]])


# ------------------------------------------------------------- the distilled student inside SB3

def episode_inputs(obs: torch.Tensor, levels: int, history: int = 6):
    """``ABREpisodeObs`` batch (B, T, 6·H + 3) -> (states (B, T, 6, H), prev (B, T), timesteps (B, T),
    current index (B,))."""
    B, T, width = obs.shape
    states = obs[..., : width - 3].reshape(B, T, 6, history)
    prev = obs[..., width - 3].round().long().clamp(0, levels)
    valid = obs[..., width - 1] > 0.5
    prev = torch.where(valid, prev, torch.full_like(prev, levels))
    t = obs[..., width - 2].round().long()
    current = valid.long().sum(1).clamp(min=1) - 1
    return states, prev, t, current


class StudentExtractor(BaseFeaturesExtractor):
    """The Mamba student's encoder + backbone as an SB3 features extractor over ``ABREpisodeObs``:
    the whole episode so far in one causal pass, features = the backbone output at the current decision.
    Build with ``policy_kwargs=dict(features_extractor_class=StudentExtractor,
    features_extractor_kwargs=dict(student=FOLDER), net_arch=dict(pi=[], vf=[64]))`` and then
    :func:`distill.rl.init_action_net_from_student`, so the untrained PPO policy *is* the distilled student."""

    def __init__(self, observation_space: gym.spaces.Box, student: str):
        from .student import load_student

        model, meta = load_student(student)
        if model.cfg.condition != "none":
            raise ValueError(f"{student}: StudentExtractor needs a student trained with condition 'none'")
        super().__init__(observation_space, features_dim=model.cfg.d_model)
        self.student = model.train()
        self.student_folder = student

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        cfg = self.student.cfg
        states, prev, t, current = episode_inputs(obs, cfg.levels, cfg.history)
        returns = torch.zeros(prev.shape, dtype=obs.dtype, device=obs.device)
        h = self.student.backbone(self.student.tokens(returns, states, prev, t))  # (B, T, d)
        return h[torch.arange(len(h), device=h.device), current]


class SB3EpisodePolicy(BatchPolicy):
    """A policy trained on ``ABREpisodeObs`` (e.g. the PPO-fine-tuned student) acting on plain ABR
    observations: it keeps each row's episode matrix itself."""

    def __init__(self, model, name: str = "ppo-student", max_decisions: int = 64, levels: int = 6):
        self.model, self.name, self.T, self.levels = model, name, max_decisions, levels
        self.reset()

    def reset(self, seed=None):
        super().reset(seed)
        self.buf = None

    def act_batch(self, obs, info):
        obs = np.asarray(obs, np.float32)
        B, width = obs.shape[0], int(np.prod(obs.shape[1:]))
        if self.buf is None or self.buf.shape[0] != B:
            self.buf = np.zeros((B, self.T, width + 3), np.float32)
            self.prev = np.full(B, self.levels)
        step = np.asarray(info["step"], dtype=np.int64)
        new = step == 0
        self.buf[new] = 0.0
        self.prev[new] = self.levels
        rows = np.arange(B)
        self.buf[rows, step, :width] = obs.reshape(B, -1)
        self.buf[rows, step, width:] = np.stack([self.prev, step, np.ones(B)], 1)
        actions, _ = self.model.predict(self.buf, deterministic=True)
        self.prev = np.asarray(actions, dtype=np.int64)
        return self.prev
