"""Fused Triton kernels for the student's recurrent step: two kernels per layer.

The PyTorch ``step`` of :mod:`agents.hybrid.mixers` launches ~35 small kernels per Mamba layer; at batch 1
on a GPU a decision is then bound by launches, not arithmetic. Here each
layer is two kernels:

* **mixer-in** (grid: batch × heads) — the pre-norm RMSNorm, this head's rows of the input
  projection (GEMV), then for a Mamba layer the causal conv over (x, B, C) with SiLU, ``dt``
  (softplus), the SSM update ``S ← exp(dt·A)·S + dt·x Bᵀ``, ``y = S C + D·x`` gated by ``silu(z)``;
  for an attention layer q/k/v, the KV-ring write and softmax attention over the window.
* **mixer-out** (grid: batch × output blocks) — Mamba's gated RMSNorm over the heads' ``y``, the
  output projection, and the residual add in place (attention: output projection + residual, and the
  ring position update).

Every program reads the whole (tiny) token row and recomputes the shared B/C rows of its group, so
no program waits on another inside a kernel. The conv state becomes a ring of ``d_conv`` slots
indexed by a step counter on the device (each step writes slot ``t mod K`` and reads the three
before it, so programs that share the B/C channels never race: they write equal values). Resets
(``keep = 0``) zero the old slots and the SSM state as the PyTorch step does. State is float32
whatever the weights' dtype.

Exactness: equal to :meth:`agents.hybrid.HybridBackbone.step` to float tolerance, tested on the CPU
with Triton's interpreter (``TRITON_INTERPRET=1``). Requirements: power-of-two ``d_model``, inner
width, head dim, state size, attention head dim and window (the default config has them).
"""

from __future__ import annotations

import math

import torch

try:  # optional: the fused path needs Triton (a CUDA GPU, or TRITON_INTERPRET=1 on the CPU)
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None


def available(device) -> bool:
    """True when the fused step can run on ``device`` (Triton importable; CUDA, or the interpreter)."""
    import os

    if triton is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


if triton is not None:

    @triton.jit
    def _prenorm_chunk(x_ptr, nw_ptr, rs, k0, BK: tl.constexpr):
        offs = k0 + tl.arange(0, BK)
        return tl.load(x_ptr + offs).to(tl.float32) * rs * tl.load(nw_ptr + offs).to(tl.float32)

    @triton.jit
    def _gemv(w_ptr, row0, x_ptr, nw_ptr, rs, D: tl.constexpr, R: tl.constexpr, BK: tl.constexpr):
        """rows ``row0 .. row0+R`` of a row-major (·, D) weight times the pre-normed token."""
        rows = row0 + tl.arange(0, R)
        acc = tl.zeros([R], dtype=tl.float32)
        for k0 in tl.static_range(0, D, BK):
            xn = _prenorm_chunk(x_ptr, nw_ptr, rs, k0, BK)
            w = tl.load(w_ptr + rows[:, None] * D + (k0 + tl.arange(0, BK))[None, :]).to(tl.float32)
            acc += tl.sum(w * xn[None, :], axis=1)
        return acc

    @triton.jit
    def _conv(conv_ptr, cw_ptr, cb_ptr, ch, new, t, keep, K: tl.constexpr):
        """Causal depthwise conv at channels ``ch`` with the ring state; writes the new value."""
        acc = new * tl.load(cw_ptr + ch * K + (K - 1)).to(tl.float32) + tl.load(cb_ptr + ch).to(tl.float32)
        for j in tl.static_range(1, K):
            slot = (t + K - j) % K
            old = tl.load(conv_ptr + ch * K + slot) * keep
            tl.store(conv_ptr + ch * K + slot, old)  # keep = 0 zeroes the episode's past
            acc += old * tl.load(cw_ptr + ch * K + (K - 1 - j)).to(tl.float32)
        tl.store(conv_ptr + ch * K + t % K, new)
        return acc * tl.sigmoid(acc)  # SiLU

    @triton.jit
    def _mamba_in(x_ptr, nw_ptr, win_ptr, cw_ptr, cb_ptr, conv_ptr, ssm_ptr, dtb_ptr, alog_ptr, dd_ptr,
                  keep_ptr, t_ptr, y_ptr, eps,
                  D: tl.constexpr, DI: tl.constexpr, H: tl.constexpr, P: tl.constexpr, N: tl.constexpr,
                  G: tl.constexpr, K: tl.constexpr, BK: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        g = h // (H // G)
        CH: tl.constexpr = DI + 2 * G * N
        xrow = x_ptr + b * D
        offs_d = tl.arange(0, D)
        xr = tl.load(xrow + offs_d).to(tl.float32)
        rs = tl.rsqrt(tl.sum(xr * xr, axis=0) / D + eps)
        z = _gemv(win_ptr, h * P, xrow, nw_ptr, rs, D, P, BK)
        xv = _gemv(win_ptr, DI + h * P, xrow, nw_ptr, rs, D, P, BK)
        bv = _gemv(win_ptr, 2 * DI + g * N, xrow, nw_ptr, rs, D, N, BK)
        cv = _gemv(win_ptr, 2 * DI + G * N + g * N, xrow, nw_ptr, rs, D, N, BK)
        dt_row = tl.load(win_ptr + (2 * DI + 2 * G * N + h) * D + offs_d).to(tl.float32)
        nw = tl.load(nw_ptr + offs_d).to(tl.float32)
        dt = tl.sum(dt_row * xr * rs * nw, axis=0)
        t = tl.load(t_ptr)
        keep = tl.load(keep_ptr + b).to(tl.float32)
        conv_row = conv_ptr + b * CH * K
        p = tl.arange(0, P)
        n = tl.arange(0, N)
        xv = _conv(conv_row, cw_ptr, cb_ptr, h * P + p, xv, t, keep, K)
        bv = _conv(conv_row, cw_ptr, cb_ptr, DI + g * N + n, bv, t, keep, K)
        cv = _conv(conv_row, cw_ptr, cb_ptr, DI + G * N + g * N + n, cv, t, keep, K)
        dt = dt + tl.load(dtb_ptr + h).to(tl.float32)
        dt = tl.where(dt > 20.0, dt, tl.log(1.0 + tl.exp(dt)))  # softplus (PyTorch's threshold 20)
        decay = tl.exp(-dt * tl.exp(tl.load(alog_ptr + h).to(tl.float32))) * keep
        s_ptrs = ssm_ptr + ((b * H + h) * P + p[:, None]) * N + n[None, :]
        s = tl.load(s_ptrs) * decay + (dt * xv)[:, None] * bv[None, :]
        tl.store(s_ptrs, s)
        y = tl.sum(s * cv[None, :], axis=1) + tl.load(dd_ptr + h).to(tl.float32) * xv
        y = y * (z * tl.sigmoid(z))
        tl.store(y_ptr + b * DI + h * P + p, y)

    @triton.jit
    def _attn_in(x_ptr, nw_ptr, wq_ptr, wk_ptr, wv_ptr, k_ptr, v_ptr, pos_ptr, keep_ptr, o_ptr, eps, scale,
                 D: tl.constexpr, NH: tl.constexpr, HD: tl.constexpr, W: tl.constexpr, BK: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        xrow = x_ptr + b * D
        xr = tl.load(xrow + tl.arange(0, D)).to(tl.float32)
        rs = tl.rsqrt(tl.sum(xr * xr, axis=0) / D + eps)
        q = _gemv(wq_ptr, h * HD, xrow, nw_ptr, rs, D, HD, BK)
        k = _gemv(wk_ptr, h * HD, xrow, nw_ptr, rs, D, HD, BK)
        v = _gemv(wv_ptr, h * HD, xrow, nw_ptr, rs, D, HD, BK)
        keep = tl.load(keep_ptr + b).to(tl.float32)
        pos = tl.load(pos_ptr + b) * (keep > 0).to(tl.int64)
        slot = pos % W
        w = tl.arange(0, W)
        e = tl.arange(0, HD)
        base = ((b * NH + h) * W + w[:, None]) * HD + e[None, :]
        kc = tl.load(k_ptr + base)
        vc = tl.load(v_ptr + base)
        here = (w == slot)[:, None]
        kc = tl.where(here, k[None, :], kc)
        vc = tl.where(here, v[None, :], vc)
        tl.store(k_ptr + ((b * NH + h) * W + slot) * HD + e, k)
        tl.store(v_ptr + ((b * NH + h) * W + slot) * HD + e, v)
        sc = tl.sum(kc * q[None, :], axis=1) * scale
        sc = tl.where(w <= pos, sc, float("-inf"))
        pr = tl.exp(sc - tl.max(sc, axis=0))
        pr = pr / tl.sum(pr, axis=0)
        tl.store(o_ptr + b * D + h * HD + e, tl.sum(pr[:, None] * vc, axis=0))

    @triton.jit
    def _mixer_out(y_ptr, nw_ptr, wo_ptr, x_ptr, pos_ptr, keep_ptr, t_ptr, eps,
                   D: tl.constexpr, DI: tl.constexpr, BO: tl.constexpr, NORM: tl.constexpr, POS: tl.constexpr,
                   TICK: tl.constexpr):
        """x[b, blk] += W_out[blk] · norm(y[b]); Mamba: gated RMSNorm first; attention: ring position + 1;
        the last layer's (``TICK``) also advances the step counter (no kernel reads it after this one)."""
        b = tl.program_id(0)
        blk = tl.program_id(1)
        offs = tl.arange(0, DI)
        y = tl.load(y_ptr + b * DI + offs)
        if NORM:
            rs = tl.rsqrt(tl.sum(y * y, axis=0) / DI + eps)
            y = y * rs * tl.load(nw_ptr + offs).to(tl.float32)
        rows = blk * BO + tl.arange(0, BO)
        w = tl.load(wo_ptr + rows[:, None] * DI + offs[None, :]).to(tl.float32)
        out = tl.sum(w * y[None, :], axis=1)
        xr = tl.load(x_ptr + b * D + rows).to(tl.float32)
        tl.store(x_ptr + b * D + rows, (xr + out).to(x_ptr.dtype.element_ty))
        if POS:
            if blk == 0:
                keep = tl.load(keep_ptr + b)
                tl.store(pos_ptr + b, tl.load(pos_ptr + b) * (keep > 0).to(tl.int64) + 1)
        if TICK:
            if (b == 0) & (blk == 0):
                tl.store(t_ptr, tl.load(t_ptr) + 1)


# Launch settings of the step, (reduction block, output block, warps), by batch: measured on one H100 at batch 1,
# 16 and 256 over blocks 32-256 × 8-64 × 1-8 warps (experiments/fused_step_sweep.py, docs/experiments/kernels.md),
# and again in evaluation.bench on another H100. Small batches want long reductions and many warps (8 programs
# per row: each must pull its 257 rows of the projection fast); at 256 the earlier (64, 32, 4) is best.
STEP_SMALL = (128, 8, 8)
STEP_LARGE = (64, 32, 4)
STEP_LARGE_BATCH = 64


class FusedStep:
    """The student's recurrent step with fused Triton kernels, for inference.

    ``FusedStep(model, batch)`` holds its own state (float32; conv state as a ring, a step counter on
    the device) and exposes ``step(returns, states, prev_actions, timesteps, keep) -> logits`` with the
    same meaning as :meth:`agents.student.ABRStudent.step`. Static shapes and no host sync: a whole
    step can be captured in a CUDA graph. ``reset_state()`` zeroes everything.
    """

    def __init__(self, model, batch: int, block_k: int | None = None, block_out: int | None = None,
                 num_warps: int | None = None, compile_io: bool = False):
        if triton is None:
            raise RuntimeError("the fused student step needs triton (pip install triton; a CUDA GPU)")
        self.model, self.batch = model, batch
        cfg = model.cfg
        dev = next(model.parameters()).device
        tile = STEP_SMALL if batch < STEP_LARGE_BATCH else STEP_LARGE
        block_k, block_out, num_warps = (v if v is not None else d for v, d in zip((block_k, block_out, num_warps), tile))
        self.d = cfg.d_model
        self.bk, self.bo, self.warps = min(block_k, self.d), min(block_out, self.d), num_warps
        dims = [cfg.d_model, cfg.expand * cfg.d_model, cfg.headdim, cfg.d_state, cfg.d_model // cfg.attn_heads,
                cfg.max_len, self.bk, self.bo]
        if not all(_pow2(v) for v in dims):
            raise ValueError(f"the fused step needs power-of-two widths, got {dims} "
                             "(d_model, d_inner, headdim, d_state, attention head dim, window, blocks)")
        self.layers = []
        for norm, mixer in zip(model.backbone.norms, model.backbone.mixers):
            if mixer.kind not in ("m", "a"):  # pragma: no cover
                raise TypeError(f"no fused step for a mixer of kind {mixer.kind!r}")
            self.layers.append((mixer.kind, norm, mixer))
        self.y = torch.empty(batch, max(cfg.expand * cfg.d_model, cfg.d_model), device=dev, dtype=torch.float32)
        self.t = torch.zeros((), dtype=torch.int64, device=dev)
        self.state = []
        for kind, _, m in self.layers:
            if kind == "m":
                self.state.append({"conv": torch.zeros(batch, m.conv_ch, m.K, device=dev),
                                   "ssm": torch.zeros(batch, m.H, m.P, m.N, device=dev)})
            else:
                self.state.append({"k": torch.zeros(batch, m.h, m.window, m.hd, device=dev),
                                   "v": torch.zeros(batch, m.h, m.window, m.hd, device=dev),
                                   "pos": torch.zeros(batch, dtype=torch.int64, device=dev)})
        self._dummy_pos = torch.zeros(batch, dtype=torch.int64, device=dev)
        # the token embedding and the head stay PyTorch; ``compile_io`` fuses them with torch.compile
        self._tokens = model.tokens
        self._head = self._final
        if compile_io:
            self._tokens = torch.compile(model.tokens, dynamic=False)
            self._head = torch.compile(self._final, dynamic=False)

    def _final(self, x):
        return self.model.head(self.model.backbone.final_norm(x))

    def reset_state(self) -> None:
        self.t.zero_()
        for st in self.state:
            for v in st.values():
                v.zero_()

    def backbone_step(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, d) tokens -> final-normed hidden states; updates the state in place."""
        return self.model.backbone.final_norm(self._layers(x.contiguous().clone(), keep))

    def _layers(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """All layers on ``x`` (batch, d), which is updated in place (the residual stream)."""
        keep = keep.contiguous()
        B, d = x.shape
        last = len(self.layers) - 1
        for i, ((kind, norm, m), st) in enumerate(zip(self.layers, self.state)):
            if kind == "m":
                _mamba_in[(B, m.H)](x, norm.weight, m.in_proj.weight, m.conv_weight, m.conv_bias, st["conv"],
                                    st["ssm"], m.dt_bias, m.A_log, m.D, keep, self.t, self.y, norm.eps,
                                    D=d, DI=m.di, H=m.H, P=m.P, N=m.N, G=m.G, K=m.K, BK=self.bk,
                                    num_warps=self.warps)
                _mixer_out[(B, d // self.bo)](self.y, m.norm.weight, m.out_proj.weight, x, self._dummy_pos, keep,
                                              self.t, m.norm.eps, D=d, DI=m.di, BO=self.bo, NORM=True, POS=False,
                                              TICK=i == last, num_warps=self.warps)
            else:
                _attn_in[(B, m.h)](x, norm.weight, m.q_proj.weight, m.k_proj.weight, m.v_proj.weight, st["k"],
                                   st["v"], st["pos"], keep, self.y, norm.eps, 1.0 / math.sqrt(m.hd),
                                   D=d, NH=m.h, HD=m.hd, W=m.window, BK=self.bk, num_warps=self.warps)
                _mixer_out[(B, d // self.bo)](self.y, norm.weight, m.o_proj.weight, x, st["pos"], keep, self.t,
                                              norm.eps, D=d, DI=d, BO=self.bo, NORM=False, POS=True,
                                              TICK=i == last, num_warps=self.warps)
        return x

    def step(self, returns, states, prev_actions, timesteps, keep):
        x = self._tokens(returns, states, prev_actions, timesteps).contiguous()  # a fresh tensor: used in place
        return self._head(self._layers(x, keep))
