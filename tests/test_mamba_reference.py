"""Our Mamba-2 mixer against the field's reference implementation, on the CPU: transformers' ``Mamba2Mixer``
(its pure-PyTorch path, the same computation as mamba-ssm's kernels) with our weights copied in. The
full-sequence forward, and our recurrent step over concatenated episodes with resets, agree with it to
float tolerance over random shapes; the chunked SSD scan agrees with a plain sequential recurrence.

One stated difference: with ``ngroups > 1`` our gated RMSNorm spans all heads, where mamba-ssm normalises
each group apart; with one group (every shipped model) the two are the same function."""

from __future__ import annotations

import pytest
import torch

from agents.hybrid import HybridConfig, MambaMixer, ssd_scan
from agents.hybrid.mamba_ssm_backend import copy_mixer_weights

SHAPES = [  # d_model, d_state, headdim, expand, ngroups, chunk, T
    (32, 16, 16, 2, 1, 8, 21),
    (64, 32, 16, 2, 1, 16, 40),
    (48, 8, 24, 2, 1, 64, 7),
    (256, 64, 64, 2, 1, 64, 65),  # the shipped students' shape, a CJS decision's length
]


def _reference_mixer(m: MambaMixer, cfg: HybridConfig):
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    hf_cfg = Mamba2Config(hidden_size=cfg.d_model, state_size=cfg.d_state, expand=cfg.expand, n_groups=cfg.ngroups,
                          head_dim=cfg.headdim, num_heads=m.H, conv_kernel=cfg.d_conv, chunk_size=cfg.chunk,
                          use_bias=False, use_conv_bias=True, layer_norm_epsilon=m.norm.eps, num_hidden_layers=1)
    return copy_mixer_weights(m, Mamba2Mixer(hf_cfg, layer_idx=0)).eval()


@pytest.mark.parametrize("d, n, p, expand, groups, chunk, T", SHAPES)
def test_mixer_forward_and_step_match_transformers(d, n, p, expand, groups, chunk, T):
    torch.manual_seed(d + T)
    cfg = HybridConfig(layers="m", d_model=d, d_state=n, headdim=p, expand=expand, ngroups=groups, chunk=chunk,
                       attn_heads=1)
    m = MambaMixer(cfg).eval()
    ref = _reference_mixer(m, cfg)
    u = torch.randn(3, T, d)
    with torch.no_grad():
        ours, theirs = m(u), ref(u)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    # the recurrent step over two episodes back to back (reset between them) equals the reference run on each
    cut = T // 2
    with torch.no_grad():
        state = m.init_state(3, None, torch.float32)
        steps = []
        for t in range(T):
            keep = torch.full((3,), 0.0 if t in (0, cut) else 1.0)
            steps.append(m.step(u[:, t], state, keep))
        steps = torch.stack(steps, 1)
        want = torch.cat([ref(u[:, :cut]), ref(u[:, cut:])], 1)
    torch.testing.assert_close(steps, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("chunk, T", [(4, 13), (8, 8), (64, 30)])
def test_ssd_scan_equals_the_sequential_recurrence(chunk, T):
    torch.manual_seed(T)
    b, H, P, N = 2, 3, 4, 5
    x, B, C = torch.randn(b, T, H, P), torch.randn(b, T, H, N), torch.randn(b, T, H, N)
    dt = torch.rand(b, T, H) * 0.5
    A = -torch.rand(H) * 2
    S0 = torch.randn(b, H, P, N)
    y, S = ssd_scan(x, dt, A, B, C, chunk, state=S0)
    state, ys = S0.clone(), []
    for t in range(T):  # S_t = exp(dt·A) S_{t-1} + dt · x_t B_tᵀ, y_t = S_t C_t
        state = torch.exp(dt[:, t] * A)[..., None, None] * state + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    torch.testing.assert_close(y, torch.stack(ys, 1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(S, state, atol=1e-4, rtol=1e-4)
