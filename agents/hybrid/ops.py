"""Sequence-mixing operations of the hybrid backbone, in plain PyTorch: RMSNorm and the chunked SSD scan
of Mamba-2 (Dao & Gu, 2024). Nothing here knows about layers or tasks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
