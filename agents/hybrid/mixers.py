"""The hybrid backbone's two mixers, each with a full-sequence ``forward`` (training) and a one-token
``step`` (recurrent inference), equal to float tolerance (tested).

* :class:`MambaMixer` (``kind = "m"``) — Mamba-2: ``in_proj`` → (gate ``z``, ``x``, ``B``, ``C``, ``dt``),
  a causal depthwise conv over ``(x, B, C)``, SiLU, the selective state-space recurrence with one
  scalar decay per head

      S_t = exp(dt_t·A) S_{t-1} + dt_t · x_t B_tᵀ,      y_t = S_t C_t + D ⊙ x_t,

  then ``rmsnorm(y ⊙ silu(z))`` and ``out_proj``. ``forward`` runs the chunked SSD of
  :func:`agents.hybrid.ops.ssd_scan`; ``step`` carries the conv window and the SSM state.
* :class:`AttentionMixer` (``kind = "a"``) — causal multi-head self-attention over a window of
  ``max_len`` tokens, no rotary (positions enter as the task's timestep embedding); ``step`` keeps a
  KV ring buffer, the full forward applies the same window, so both agree at any length.

``step`` updates its state tensors in place with static shapes, so it can be captured in a CUDA graph.
Each mixer declares its ``kind``; the fused kernels (:mod:`agents.hybrid.kernels`) pick their path from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .ops import RMSNorm, ssd_scan


class MambaMixer(nn.Module):
    """Mamba-2 mixer (pure PyTorch): full-sequence ``forward`` and one-token ``step``."""

    kind = "m"

    def __init__(self, cfg):
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

    def __init__(self, cfg):
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
