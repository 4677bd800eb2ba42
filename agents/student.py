"""The Mamba4Net student: the teacher's task encoder and head around a small hybrid Mamba backbone.

Backbone: a list of layer kinds (``StudentConfig.layers``; ``m`` = Mamba-2 / SSD block, ``a`` = causal
self-attention block), default ``mmmmmmmmmmaa`` — the paper's 10 Mamba + 2 attention layers near the
output. Each block is pre-norm residual: ``x + mixer(rmsnorm(x))``.

The Mamba block follows Mamba-2 (Dao & Gu, 2024): ``in_proj`` → (gate ``z``, ``x``, ``B``, ``C``, ``dt``),
a causal depthwise conv over ``(x, B, C)``, SiLU, the selective state-space recurrence with one scalar
decay per head

    S_t = exp(dt_t·A) S_{t-1} + dt_t · x_t B_tᵀ,      y_t = S_t C_t + D ⊙ x_t,

then ``rmsnorm(y ⊙ silu(z))`` and ``out_proj``. Two ways to run it, equal to float tolerance (tested):

* ``forward`` — the whole sequence at once, for training: a chunked SSD written with batched matmuls
  (quadratic, attention-like form inside a chunk; the state is carried between chunks).
* ``step`` — one token, for inference: the policy carries each layer's conv window and SSM state (and
  the attention layers' KV ring buffer), so a decision costs one step however long the episode is.
  The step updates its state tensors in place and has static shapes, so it can be captured in a CUDA
  graph (``evaluation.bench`` does).

Attention blocks have no rotary embedding: positions enter once, as the timestep embedding added to
each token (as in the teacher). Their KV cache is a ring of ``max_len`` decisions, i.e. sliding-window
attention; the full-sequence forward applies the same window, so both paths agree at any length.

Token layout (deviation from the teacher, stated): the teacher spends three tokens per decision
(return-to-go, state, previous action). The student sums the three embeddings into **one token per
decision**, so one recurrent step yields one decision.

Kernels: this module is pure PyTorch. ``mamba-ssm``'s fused kernels are not used (not installable on
the machines we run on; see docs/STUDENT.md). For inference on a GPU, :mod:`agents.student_kernels`
runs the same step as two Triton kernels per layer (equal to this one to float tolerance);
:class:`StudentPolicy` uses it on CUDA when triton is installed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import BatchPolicy
from .checkpoint import read_checkpoint, write_checkpoint
from .teacher import ABRStateEncoder

PRETRAINED_ABR = Path(__file__).resolve().parent / "pretrained" / "student_abr"


@dataclass(frozen=True)
class HybridShape:
    """The hybrid backbone's shape: the fields every student config shares (ABR's :class:`StudentConfig`
    and the VP / CJS students' configs); :meth:`hybrid` gives the backbone's config for a window."""

    layers: str = "mmmmmmmmmmaa"  # m = Mamba-2 block, a = attention block (paper: 10 Mamba + 2 attention)
    d_model: int = 256
    d_state: int = 64  # N: equals the teacher's head dim, so CWR maps K→B and Q→C without truncation
    headdim: int = 64  # P
    expand: int = 2  # d_inner = expand * d_model
    ngroups: int = 1  # B/C groups (heads share them within a group)
    d_conv: int = 4
    attn_heads: int = 4
    chunk: int = 64  # SSD chunk length of the full-sequence path

    def hybrid(self, max_len: int) -> "StudentConfig":
        return StudentConfig(**{f.name: getattr(self, f.name) for f in fields(HybridShape)}, max_len=max_len)


@dataclass(frozen=True)
class StudentConfig(HybridShape):
    max_len: int = 64  # attention window (decisions) = KV ring length
    history: int = 6
    levels: int = 6
    max_timestep: int = 64
    return_scale: float = 10.0
    encoder_width: int = 128
    condition: str = "return"  # "return" (return-to-go token) or "none"

    def __post_init__(self):
        bad = set(self.layers) - {"m", "a"}
        if bad or not self.layers:
            raise ValueError(f"StudentConfig.layers={self.layers!r}: use a non-empty string of 'm' and 'a'")
        if (self.expand * self.d_model) % self.headdim:
            raise ValueError("StudentConfig: expand*d_model must be a multiple of headdim")
        if ((self.expand * self.d_model) // self.headdim) % self.ngroups:
            raise ValueError("StudentConfig: the number of heads must be a multiple of ngroups")
        if self.d_model % self.attn_heads:
            raise ValueError("StudentConfig: d_model must be a multiple of attn_heads")


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


ONE_CHUNK_MAX = 128  # without a carried-in or returned state, sequences up to this long take one chunk


def ssd_scan(x, dt, A, B, C, chunk: int, state=None, final_state: bool = True):
    """Chunked SSD. ``x`` (b, T, H, P), ``dt`` (b, T, H) (after softplus), ``A`` (H,) negative, ``B``/``C``
    (b, T, H, N) (already expanded to heads). Returns ``y`` (b, T, H, P) and the final state (b, H, P, N).

    With ``final_state=False``, no ``state`` and ``T ≤ ONE_CHUNK_MAX`` the whole sequence is one chunk and
    only the within-chunk (quadratic) part is computed — no chunk states, no inter-chunk pass (the same
    ``y``; the state returned is ``None``). A one-shot forward over a short sequence (a CJS decision:
    up to 65 tokens) then costs a few fused products per layer instead of two chunks' bookkeeping."""
    b, T, H, P = x.shape
    N = B.shape[-1]
    one = not final_state and state is None and T <= ONE_CHUNK_MAX
    Q = T if one else min(chunk, T)
    pad = (-T) % Q
    if pad:  # padded steps decay by 1 and add nothing: the final state is unchanged
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    nc = (T + pad) // Q
    a = (dt * A).reshape(b, nc, Q, H)  # log-decay per step, <= 0
    xd = (x * dt[..., None]).reshape(b, nc, Q, H, P)
    B = B.reshape(b, nc, Q, H, N)
    C = C.reshape(b, nc, Q, H, N)
    acs = torch.cumsum(a, dim=2)  # (b, c, Q, H)
    seg = acs[:, :, :, None, :] - acs[:, :, None, :, :]  # (b, c, i, j, H): decay from j to i
    causal = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
    L = torch.exp(seg.masked_fill(~causal[None, None, :, :, None], float("-inf")))
    scores = torch.einsum("bcihn,bcjhn->bcijh", C, B) * L
    y = torch.einsum("bcijh,bcjhp->bcihp", scores, xd)
    if one:  # the whole sequence in one chunk, nothing carried in or out: the within-chunk part is all of y
        return y.reshape(b, T, H, P), None
    to_end = torch.exp(acs[:, :, -1:, :] - acs)  # (b, c, Q, H)
    chunk_states = torch.einsum("bcjh,bcjhp,bcjhn->bchpn", to_end, xd, B)
    S = x.new_zeros(b, H, P, N) if state is None else state
    chunk_decay = torch.exp(acs[:, :, -1, :])  # (b, c, H)
    inter = []
    for c in range(nc):
        inter.append(torch.einsum("bihn,bhpn->bihp", C[:, c], S) * torch.exp(acs[:, c])[..., None])
        S = S * chunk_decay[:, c, :, None, None] + chunk_states[:, c]
    y = (y + torch.stack(inter, dim=1)).reshape(b, nc * Q, H, P)[:, :T]
    return y, S


class MambaMixer(nn.Module):
    """Mamba-2 mixer (pure PyTorch): full-sequence ``forward`` and one-token ``step``."""

    kind = "m"

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        d = cfg.d_model
        self.di = cfg.expand * d
        self.H, self.P, self.G, self.N, self.K = self.di // cfg.headdim, cfg.headdim, cfg.ngroups, cfg.d_state, cfg.d_conv
        self.chunk = cfg.chunk
        self.conv_ch = self.di + 2 * self.G * self.N
        self.in_proj = nn.Linear(d, 2 * self.di + 2 * self.G * self.N + self.H, bias=False)
        bound = 1 / math.sqrt(self.K)  # nn.Conv1d's default for a depthwise kernel
        self.conv_weight = nn.Parameter(torch.empty(self.conv_ch, self.K).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(self.conv_ch).uniform_(-bound, bound))
        # dt in [1e-3, 1e-1] log-uniform and A in [1, 16]: Mamba-2's initialisation
        dt = torch.exp(torch.empty(self.H).uniform_(math.log(1e-3), math.log(1e-1)))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.H).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.H))
        self.norm = RMSNorm(self.di)
        self.out_proj = nn.Linear(self.di, d, bias=False)

    def _split(self, zxbcdt):
        return torch.split(zxbcdt, [self.di, self.conv_ch, self.H], dim=-1)

    def _heads(self, xBC):
        x, B, C = torch.split(xBC, [self.di, self.G * self.N, self.G * self.N], dim=-1)
        lead = x.shape[:-1]
        rep = self.H // self.G
        x = x.reshape(*lead, self.H, self.P)
        B = B.reshape(*lead, self.G, self.N).repeat_interleave(rep, dim=-2)
        C = C.reshape(*lead, self.G, self.N).repeat_interleave(rep, dim=-2)
        return x, B, C

    def _out(self, y, x, z):
        y = y + x * self.D[:, None]
        y = y.reshape(*y.shape[:-2], self.di)
        return self.out_proj(self.norm(y * F.silu(z)))

    def forward(self, u):  # (b, T, d)
        b, T, _ = u.shape
        z, xBC, dt = self._split(self.in_proj(u))
        xBC = F.conv1d(F.pad(xBC.transpose(1, 2), (self.K - 1, 0)), self.conv_weight[:, None, :], self.conv_bias,
                       groups=self.conv_ch).transpose(1, 2)
        x, B, C = self._heads(F.silu(xBC))
        dt = F.softplus(dt + self.dt_bias)
        y, _ = ssd_scan(x, dt, -torch.exp(self.A_log), B, C, self.chunk, final_state=False)
        return self._out(y, x, z)

    def init_state(self, batch: int, device, dtype) -> dict:
        return {"conv": torch.zeros(batch, self.conv_ch, self.K - 1, device=device, dtype=dtype),
                "ssm": torch.zeros(batch, self.H, self.P, self.N, device=device, dtype=dtype)}

    def step(self, u, state: dict, keep):  # u (b, d); keep (b,) 1 = continue, 0 = new episode
        z, xBC, dt = self._split(self.in_proj(u))
        window = torch.cat([state["conv"] * keep[:, None, None], xBC[:, :, None]], dim=-1)  # (b, ch, K)
        state["conv"].copy_(window[:, :, 1:])
        xBC = F.silu((window * self.conv_weight).sum(-1) + self.conv_bias)
        x, B, C = self._heads(xBC)
        dt = F.softplus(dt + self.dt_bias)  # (b, H)
        decay = torch.exp(dt * -torch.exp(self.A_log)) * keep[:, None]
        ssm = state["ssm"] * decay[..., None, None] + (dt[..., None] * x)[..., None] * B[:, :, None, :]
        state["ssm"].copy_(ssm)
        y = torch.einsum("bhpn,bhn->bhp", ssm, C)
        return self._out(y, x, z)


class AttentionMixer(nn.Module):
    """Causal multi-head self-attention over a window of ``max_len`` tokens (no rotary: positions come
    from the input's timestep embedding); ``step`` keeps a KV ring buffer."""

    kind = "a"

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        d = cfg.d_model
        self.h, self.hd, self.window = cfg.attn_heads, d // cfg.attn_heads, cfg.max_len
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def _heads(self, t):
        return t.reshape(*t.shape[:-1], self.h, self.hd).transpose(-3, -2) if t.dim() == 3 else \
            t.reshape(t.shape[0], self.h, 1, self.hd)

    def forward(self, u):
        b, T, _ = u.shape
        q, k, v = (self._heads(p(u)) for p in (self.q_proj, self.k_proj, self.v_proj))
        if T <= self.window:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            i = torch.arange(T, device=u.device)
            allowed = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < self.window)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.o_proj(y.transpose(1, 2).reshape(b, T, -1))

    def init_state(self, batch: int, device, dtype) -> dict:
        return {"k": torch.zeros(batch, self.h, self.window, self.hd, device=device, dtype=dtype),
                "v": torch.zeros(batch, self.h, self.window, self.hd, device=device, dtype=dtype),
                "pos": torch.zeros(batch, dtype=torch.long, device=device)}

    def step(self, u, state: dict, keep):
        b = u.shape[0]
        pos = state["pos"] * keep.long()  # tokens seen in this episode before this one
        q, k, v = (self._heads(p(u)) for p in (self.q_proj, self.k_proj, self.v_proj))  # (b, h, 1, hd)
        slot = (pos % self.window).view(b, 1, 1, 1).expand(b, self.h, 1, self.hd)
        state["k"].scatter_(2, slot, k)
        state["v"].scatter_(2, slot, v)
        valid = torch.arange(self.window, device=u.device)[None, :] <= pos[:, None]  # (b, window)
        y = F.scaled_dot_product_attention(q, state["k"], state["v"], attn_mask=valid[:, None, None, :])
        state["pos"].copy_(pos + 1)
        return self.o_proj(y.reshape(b, -1))


class HybridBackbone(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.mixers = nn.ModuleList(MambaMixer(cfg) if k == "m" else AttentionMixer(cfg) for k in cfg.layers)
        self.norms = nn.ModuleList(RMSNorm(cfg.d_model) for _ in cfg.layers)
        self.final_norm = RMSNorm(cfg.d_model)

    def forward(self, x):  # (b, T, d)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        return self.final_norm(x)

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> list[dict]:
        return [m.init_state(batch, device, dtype) for m in self.mixers]

    def step(self, x, state: list[dict], keep):  # (b, d)
        for norm, mixer, st in zip(self.norms, self.mixers, state):
            x = x + mixer.step(norm(x), st, keep)
        return self.final_norm(x)


class OneShotFusion:
    """For students whose decision is one forward over a short sequence (VP's 30 tokens, a CJS decision's
    ≤ 65): :meth:`fuse` runs the backbone through :class:`agents.student_kernels.FusedSequence` (three
    Triton kernels per layer; CUDA, or ``TRITON_INTERPRET=1``) at inference, and :meth:`run_backbone` is
    the forward's call of the backbone. Training (grad enabled) always runs the PyTorch backbone."""

    _fused = None  # a FusedSequence after fuse()

    def fuse(self, on: bool = True, **launch):
        """Fused inference on (``on=False``: the PyTorch backbone again). Call it after moving the model
        and after training: it keeps a concatenated copy of the attention layers' q/k/v weights.
        ``launch``: the kernels' launch settings (``FusedSequence``'s arguments; by default picked per call)."""
        from .student_kernels import FusedSequence

        self._fused = FusedSequence(self.backbone, **launch) if on else None
        return self

    @property
    def fused(self) -> bool:
        """Whether inference runs the backbone in the fused kernels (:meth:`fuse`)."""
        return self._fused is not None

    def run_backbone(self, x: torch.Tensor) -> torch.Tensor:
        return self._fused(x) if self._fused is not None and not torch.is_grad_enabled() else self.backbone(x)


class ABRStudent(nn.Module):
    """ABR student: one token per decision = LN(return + state + previous action + timestep embeddings)."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed_return = nn.Linear(1, d)
        self.embed_state = ABRStateEncoder(cfg.history, cfg.levels, cfg.encoder_width, d)
        self.embed_action = nn.Embedding(cfg.levels + 1, d)  # previous level; ``levels`` = none yet
        self.embed_time = nn.Embedding(cfg.max_timestep, d)
        self.norm = nn.LayerNorm(d)
        self.backbone = HybridBackbone(cfg)
        self.head = nn.Linear(d, cfg.levels)

    def tokens(self, returns, states, prev_actions, timesteps):
        if self.cfg.condition == "none":
            returns = torch.zeros_like(returns)
        lead = returns.shape
        s = self.embed_state(states.reshape(-1, *states.shape[-2:])).reshape(*lead, -1)
        r = self.embed_return(returns[..., None] / self.cfg.return_scale)
        t = self.embed_time(timesteps.clamp(max=self.cfg.max_timestep - 1))
        return self.norm(r + s + self.embed_action(prev_actions) + t)

    def forward(self, returns, states, prev_actions, timesteps):
        """Whole episodes: ``returns`` (B, T), ``states`` (B, T, 6, H), ``prev_actions`` (B, T),
        ``timesteps`` (B, T) -> logits (B, T, levels). Causal: right padding does not change earlier rows."""
        return self.head(self.backbone(self.tokens(returns, states, prev_actions, timesteps)))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters()}

    def init_state(self, batch: int, device=None, dtype=torch.float32):
        return self.backbone.init_state(batch, device, dtype)

    def step(self, returns, states, prev_actions, timesteps, state, keep):
        """One decision per row: inputs without the time axis; ``keep`` (B,) float, 0 starts a new episode."""
        return self.head(self.backbone.step(self.tokens(returns, states, prev_actions, timesteps), state, keep))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_student(model: ABRStudent, folder: str | Path, extra: dict, dtype=torch.bfloat16) -> Path:
    tensors = {k: v.detach().to(dtype).cpu() for k, v in model.state_dict().items()}
    return write_checkpoint(folder, tensors, "mamba4net-student", model.cfg,
                            {"task": "abr", "dtype": str(dtype).removeprefix("torch."), **extra})


def load_student(folder: str | Path = PRETRAINED_ABR, device: str = "cpu") -> tuple[ABRStudent, dict]:
    weights, cfg, meta = read_checkpoint(folder, StudentConfig, "python -m distill.student --env abr")
    model = ABRStudent(cfg)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model.to(device).eval(), meta


class StudentPolicy(BatchPolicy):
    """The student as a :class:`~agents.base.Policy`: per row the return-to-go, the previous action and
    the recurrent state; a row with ``info["step"] == 0`` starts over (its state is zeroed in the step)."""

    name = "student"

    def __init__(self, model: ABRStudent, target_return: float, device: str = "cpu", fused: bool | None = None):
        """``fused``: step with the Triton kernels of :mod:`agents.student_kernels` (default: when the
        device is CUDA and triton is installed); otherwise the PyTorch step."""
        from .student_kernels import available

        self.model = model.eval()
        self.target_return = float(target_return)
        self.device = device
        self.fused = available(device) and torch.device(device).type == "cuda" if fused is None else bool(fused)
        self.reset()

    def reset(self, seed=None):
        super().reset(seed)
        self.state = None
        self.batch = -1

    @torch.no_grad()
    def act_batch(self, obs, info):
        obs = np.asarray(obs, dtype=np.float32)
        B = obs.shape[0]
        if B != self.batch:
            self.batch = B
            if self.fused:
                from .student_kernels import FusedStep

                self.state = FusedStep(self.model, B)
            else:
                self.state = self.model.init_state(B, self.device)
            self.rtg = np.zeros(B, np.float32)
            self.prev = np.full(B, self.model.cfg.levels, np.int64)
        step = np.asarray(info["step"], dtype=np.int64)
        new = step == 0
        self.rtg = np.where(new, self.target_return, self.rtg - np.where(new, 0.0, np.asarray(info.get("qoe", 0.0))))
        self.prev = np.where(new, self.model.cfg.levels, self.prev)
        dev = self.device
        args = (torch.as_tensor(self.rtg, dtype=torch.float32, device=dev), torch.as_tensor(obs, device=dev),
                torch.as_tensor(self.prev, device=dev), torch.as_tensor(step, device=dev))
        keep = torch.as_tensor(~new, dtype=torch.float32, device=dev)
        if self.fused:
            logits = self.state.step(*args, keep)
        else:
            logits = self.model.step(*args, self.state, keep)
        act = logits.argmax(-1).cpu().numpy()
        self.prev = act.astype(np.int64)
        return act
