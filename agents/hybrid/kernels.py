"""Fused Triton kernels for the student's recurrent step: two kernels per layer, one for the token.

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

The token embedding is one more kernel (grid: batch × output blocks): the Pensieve features of the observation,
LeakyReLU, the projection's rows of this block and the return / previous-level / timestep embeddings; the
final RMSNorm and the head run inside the last layer's mixer-out. Both need a whole row (the token's
LayerNorm; the head's input): each program counts its arrival on a per-row counter, and the row's last
program to arrive (which then sees the others' stores) finishes the row — no extra launch.

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
                   fnw_ptr, wh_ptr, bh_ptr, logit_ptr, count_ptr, feps,
                   D: tl.constexpr, DI: tl.constexpr, BO: tl.constexpr, NORM: tl.constexpr, POS: tl.constexpr,
                   TICK: tl.constexpr, HEAD: tl.constexpr, NL: tl.constexpr, NLP: tl.constexpr):
        """x[b, blk] += W_out[blk] · norm(y[b]); Mamba: gated RMSNorm first; attention: ring position + 1;
        the last layer's (``TICK``) also advances the step counter (no kernel reads it after this one), and
        with ``HEAD`` the row's last program applies the final RMSNorm and the head -> logits (``NL`` levels)."""
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
        if HEAD:
            if _arrive_last(count_ptr + b, D // BO):
                tl.store(count_ptr + b, 0)
                offs_d = tl.arange(0, D)
                xf = tl.load(x_ptr + b * D + offs_d, cache_modifier=".cg").to(tl.float32)
                xn = xf * tl.rsqrt(tl.sum(xf * xf, axis=0) / D + feps) * tl.load(fnw_ptr + offs_d).to(tl.float32)
                j = tl.arange(0, NLP)
                on = j < NL
                wh = tl.load(wh_ptr + j[:, None] * D + offs_d[None, :], mask=on[:, None], other=0.0).to(tl.float32)
                lg = tl.sum(wh * xn[None, :], axis=1) + tl.load(bh_ptr + j, mask=on, other=0.0).to(tl.float32)
                tl.store(logit_ptr + b * NL + j, lg.to(logit_ptr.dtype.element_ty), mask=on)


    @triton.jit
    def _arrive_last(count_ptr, n):
        """True in the last of the ``n`` programs sharing ``count_ptr`` to get here: the stores the others made
        before it are then visible to it (read them with ``cache_modifier=".cg"``: not from a stale L1). That
        program resets the counter for the next launch."""
        tl.debug_barrier()  # every thread of this program has issued its stores
        return tl.atomic_add(count_ptr, 1, sem="acq_rel", scope="gpu") == n - 1

    @triton.jit
    def _conv_feature(s_row, w_ptr, b_ptr, g, on, L: tl.constexpr):
        """Features ``g`` (channel-major: channel g // L, position g % L) of a one-channel conv, kernel 4,
        over the observation row at ``s_row``; zero where ``on`` is false."""
        g = tl.where(on, g, 0)
        c = g // L
        pos = g % L
        acc = tl.load(b_ptr + c, mask=on, other=0.0).to(tl.float32)
        for k in tl.static_range(4):
            acc += tl.load(w_ptr + c * 4 + k, mask=on, other=0.0).to(tl.float32) * \
                tl.load(s_row + pos + k, mask=on, other=0.0).to(tl.float32)
        return tl.where(on, acc, 0.0)

    @triton.jit
    def _tokens(ret_ptr, s_ptr, act_ptr, ts_ptr, wr_ptr, br_ptr, ws_ptr, bs_ptr, ct_ptr, cbt_ptr, cd_ptr, cbd_ptr,
                cz_ptr, cbz_ptr, wp_ptr, bp_ptr, ea_ptr, et_ptr, lnw_ptr, lnb_ptr, u_ptr, x_ptr, count_ptr,
                ret_scale, slope, ln_eps,
                D: tl.constexpr, HIST: tl.constexpr, LEV: tl.constexpr, WID: tl.constexpr, F: tl.constexpr,
                TMAX: tl.constexpr, R0: tl.constexpr, R1: tl.constexpr, R2: tl.constexpr, RET: tl.constexpr,
                BO: tl.constexpr, BF: tl.constexpr):
        """:meth:`agents.student.ABRStudent.tokens` for row ``b``, outputs ``blk``: the Pensieve features
        (recomputed by every program: 36 inputs), LeakyReLU, this block's rows of the projection, plus the
        return, previous-level and timestep embeddings -> ``u`` (float32); the row's last program applies
        the LayerNorm over the whole row -> ``x``."""
        b = tl.program_id(0)
        blk = tl.program_id(1)
        s_row = s_ptr + b * 6 * HIST
        rows = blk * BO + tl.arange(0, BO)
        sc0 = tl.load(s_row + R0 * HIST + HIST - 1).to(tl.float32)
        sc1 = tl.load(s_row + R1 * HIST + HIST - 1).to(tl.float32)
        sc2 = tl.load(s_row + R2 * HIST + HIST - 1).to(tl.float32)
        LT: tl.constexpr = HIST - 3  # positions of the history convs (kernel 4)
        LS: tl.constexpr = LEV - 3  # of the next-size conv
        S0: tl.constexpr = 3 * WID
        S1: tl.constexpr = S0 + WID * LT
        S2: tl.constexpr = S1 + WID * LT
        acc = tl.zeros([BO], dtype=tl.float32)
        for f0 in tl.static_range(0, F, BF):
            f = f0 + tl.arange(0, BF)
            on = f < F
            is_s = f < S0
            fs = tl.where(is_s, f, 0)
            v = tl.load(bs_ptr + fs, mask=is_s, other=0.0).to(tl.float32) + \
                tl.load(ws_ptr + fs * 3, mask=is_s, other=0.0).to(tl.float32) * sc0 + \
                tl.load(ws_ptr + fs * 3 + 1, mask=is_s, other=0.0).to(tl.float32) * sc1 + \
                tl.load(ws_ptr + fs * 3 + 2, mask=is_s, other=0.0).to(tl.float32) * sc2
            v = tl.where(is_s, v, 0.0)
            v += _conv_feature(s_row + 2 * HIST, ct_ptr, cbt_ptr, f - S0, (f >= S0) & (f < S1), LT)
            v += _conv_feature(s_row + 3 * HIST, cd_ptr, cbd_ptr, f - S1, (f >= S1) & (f < S2), LT)
            v += _conv_feature(s_row + 4 * HIST, cz_ptr, cbz_ptr, f - S2, (f >= S2) & on, LS)
            v = tl.where(v >= 0, v, v * slope)  # LeakyReLU
            w = tl.load(wp_ptr + rows[:, None] * F + f[None, :], mask=on[None, :], other=0.0).to(tl.float32)
            acc += tl.sum(w * v[None, :], axis=1)
        acc += tl.load(bp_ptr + rows).to(tl.float32) + tl.load(br_ptr + rows).to(tl.float32)
        if RET:
            acc += tl.load(wr_ptr + rows).to(tl.float32) * (tl.load(ret_ptr + b).to(tl.float32) / ret_scale)
        a = tl.load(act_ptr + b)
        t = tl.minimum(tl.load(ts_ptr + b), TMAX - 1)
        acc += tl.load(ea_ptr + a * D + rows).to(tl.float32) + tl.load(et_ptr + t * D + rows).to(tl.float32)
        tl.store(u_ptr + b * D + rows, acc)
        if _arrive_last(count_ptr + b, D // BO):
            tl.store(count_ptr + b, 0)
            offs = tl.arange(0, D)
            u = tl.load(u_ptr + b * D + offs, cache_modifier=".cg")
            mean = tl.sum(u, axis=0) / D
            dev = u - mean
            rstd = tl.rsqrt(tl.sum(dev * dev, axis=0) / D + ln_eps)
            xn = dev * rstd * tl.load(lnw_ptr + offs).to(tl.float32) + tl.load(lnb_ptr + offs).to(tl.float32)
            tl.store(x_ptr + b * D + offs, xn.to(x_ptr.dtype.element_ty))


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

    ``io``: how the token embedding and the head run. ``"triton"`` (default): one more kernel for the
    token (Pensieve features, projection, embeddings; the LayerNorm by the row's last program), and the
    final norm and head inside the last layer's output kernel — a decision is ``2 × layers + 1`` kernels,
    and the returned logits are a buffer the next step overwrites. ``"torch"``: the model's own modules;
    ``"compiled"``: those under ``torch.compile``.
    """

    def __init__(self, model, batch: int, block_k: int | None = None, block_out: int | None = None,
                 num_warps: int | None = None, io: str = "triton"):
        if triton is None:
            raise RuntimeError("the fused student step needs triton (pip install triton; a CUDA GPU)")
        if io not in ("triton", "torch", "compiled"):
            raise ValueError(f"io={io!r}: use triton, torch or compiled")
        self.model, self.batch, self.io = model, batch, io
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
        wdt = model.head.weight.dtype
        # Triton I/O: the token before its LayerNorm (float32), the residual stream, the logits, and one arrival
        # counter per row for each of the two kernels whose last program finishes the row
        self.u = torch.empty(batch, self.d, device=dev, dtype=torch.float32)
        self.x = torch.empty(batch, self.d, device=dev, dtype=wdt)
        self.logits = torch.empty(batch, model.head.out_features, device=dev, dtype=wdt)
        self.count = torch.zeros(2, batch, device=dev, dtype=torch.int32)
        # mixer-out's arguments beside the layer's own: the head's (used by the last layer with HEAD), D, BO, warps
        fn, hd = model.backbone.final_norm, model.head
        self._out = dict(fnw_ptr=fn.weight, wh_ptr=hd.weight, bh_ptr=hd.bias, logit_ptr=self.logits,
                         count_ptr=self.count[1], feps=fn.eps, D=self.d, BO=self.bo, TICK=False, HEAD=False,
                         NL=hd.out_features, NLP=triton.next_power_of_2(hd.out_features), num_warps=self.warps)
        self._out_last = {**self._out, "TICK": True}
        self._out_last_head = {**self._out_last, "HEAD": True}
        self._tokens, self._head = model.tokens, self._final
        if io == "compiled":
            self._tokens = torch.compile(model.tokens, dynamic=False)
            self._head = torch.compile(self._final, dynamic=False)
        elif io == "triton":
            enc = model.embed_state
            self._features = enc.proj[1].in_features
            self._slope = float(enc.proj[0].negative_slope)
            self._rows = [int(r) for r in enc.scalar_rows.tolist()]
            if len(self._rows) != 3 or any(c.kernel_size != (4,) for c in (enc.thr, enc.dly, enc.size)):
                raise ValueError("the Triton token embedding expects Pensieve's trunk (3 scalars, convs of kernel 4)")

    def _final(self, x):
        return self.model.head(self.model.backbone.final_norm(x))

    def reset_state(self) -> None:
        self.t.zero_()
        self.count.zero_()
        for st in self.state:
            for v in st.values():
                v.zero_()

    def backbone_step(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, d) tokens -> final-normed hidden states; updates the state in place."""
        return self.model.backbone.final_norm(self._layers(x.contiguous().clone(), keep))

    def _layers(self, x: torch.Tensor, keep: torch.Tensor, head: bool = False) -> torch.Tensor:
        """All layers on ``x`` (batch, d), which is updated in place (the residual stream); with ``head`` the
        last kernel also writes the logits into ``self.logits``."""
        keep = keep.contiguous()
        B, d = x.shape
        last = len(self.layers) - 1
        for i, ((kind, norm, m), st) in enumerate(zip(self.layers, self.state)):
            out = self._out_last_head if head and i == last else self._out_last if i == last else self._out
            if kind == "m":
                _mamba_in[(B, m.H)](x, norm.weight, m.in_proj.weight, m.conv_weight, m.conv_bias, st["conv"],
                                    st["ssm"], m.dt_bias, m.A_log, m.D, keep, self.t, self.y, norm.eps,
                                    D=d, DI=m.di, H=m.H, P=m.P, N=m.N, G=m.G, K=m.K, BK=self.bk,
                                    num_warps=self.warps)
                _mixer_out[(B, d // self.bo)](self.y, m.norm.weight, m.out_proj.weight, x, self._dummy_pos, keep,
                                              self.t, m.norm.eps, DI=m.di, NORM=True, POS=False, **out)
            else:
                _attn_in[(B, m.h)](x, norm.weight, m.q_proj.weight, m.k_proj.weight, m.v_proj.weight, st["k"],
                                   st["v"], st["pos"], keep, self.y, norm.eps, 1.0 / math.sqrt(m.hd),
                                   D=d, NH=m.h, HD=m.hd, W=m.window, BK=self.bk, num_warps=self.warps)
                _mixer_out[(B, d // self.bo)](self.y, norm.weight, m.o_proj.weight, x, st["pos"], keep, self.t,
                                              norm.eps, DI=d, NORM=False, POS=True, **out)
        return x

    def _triton_tokens(self, returns, states, prev_actions, timesteps) -> torch.Tensor:
        """:meth:`agents.student.ABRStudent.tokens` in one kernel -> ``self.x``."""
        m, cfg = self.model, self.model.cfg
        enc = m.embed_state
        if tuple(states.shape) != (self.batch, 6, cfg.history):
            raise ValueError(f"states of shape {tuple(states.shape)}: the step expects ({self.batch}, 6, {cfg.history})")
        states = states.contiguous()
        _tokens[(self.batch, self.d // self.bo)](
            returns.contiguous(), states, prev_actions.contiguous(), timesteps.contiguous(),
            m.embed_return.weight, m.embed_return.bias, enc.scalar.weight, enc.scalar.bias, enc.thr.weight,
            enc.thr.bias, enc.dly.weight, enc.dly.bias, enc.size.weight, enc.size.bias, enc.proj[1].weight,
            enc.proj[1].bias, m.embed_action.weight, m.embed_time.weight, m.norm.weight, m.norm.bias, self.u, self.x,
            self.count[0], float(cfg.return_scale), self._slope, m.norm.eps,
            D=self.d, HIST=cfg.history, LEV=cfg.levels, WID=enc.thr.out_channels, F=self._features,
            TMAX=cfg.max_timestep, R0=self._rows[0], R1=self._rows[1], R2=self._rows[2], RET=cfg.condition != "none",
            BO=self.bo, BF=256, num_warps=self.warps)
        return self.x

    def step(self, returns, states, prev_actions, timesteps, keep):
        if self.io == "triton":
            self._layers(self._triton_tokens(returns, states, prev_actions, timesteps), keep, head=True)
            return self.logits
        x = self._tokens(returns, states, prev_actions, timesteps).contiguous()  # a fresh tensor: used in place
        return self._head(self._layers(x, keep))
