"""Fused Triton kernels for the students' one-shot forwards (a CJS decision, a VP prediction): three kernels
per layer instead of ~40 PyTorch ops. The recurrent step (ABR) is in :mod:`agents.hybrid.kernels`, whose
``available`` says where these run too.

Exactness: equal to :meth:`agents.hybrid.HybridBackbone.forward` to float tolerance, tested on the CPU with
Triton's interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import math

import torch

from .kernels import _pow2, triton
from .ops import ONE_CHUNK_MAX

if triton is not None:
    import triton.language as tl

# ------------------------------------------------------------------------------------------------
# One-shot sequence forward (a CJS decision: ≤ 65 tokens, nothing carried in or out): three kernels
# per layer instead of ~40 PyTorch ops.
#
# * ``_linear`` (grid: row blocks × output blocks) — ``out = rmsnorm(a)·W^T`` (optional norm; optional
#   ``out += ...`` for the residual stream). Mamba's in-projection (pre-norm folded in), the attention
#   q/k/v projection (one concatenated weight) and both output projections.
# * ``_ssd_seq`` (grid: batch × head blocks) — Mamba heads over the whole sequence: the causal conv over
#   (x, B, C) with SiLU, ``dt`` (softplus), the SSD product as one chunk
#   ``y = ((C Bᵀ) ∘ L) (dt·x) + D·x`` with ``L_ij = exp(Σ_{j<k≤i} dt_k A)`` (i ≥ j), gated by ``silu(z)``.
# * ``_attn_seq`` (grid: batch × heads) — causal softmax attention over the sequence.
# ------------------------------------------------------------------------------------------------

if triton is not None:

    @triton.jit
    def _linear(a_ptr, nw_ptr, w_ptr, out_ptr, R, O, eps,
                KD: tl.constexpr, NORM: tl.constexpr, RES: tl.constexpr,
                BR: tl.constexpr, BO: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
        """rows ``a`` (R, KD) → ``out`` (R, O) [+]= rmsnorm(a)·Wᵀ with ``W`` (O, KD) row-major; the product
        in ``W``'s dtype (bf16 weights: bf16 inputs, float32 sums, as PyTorch's bf16 linear)."""
        rows = tl.program_id(0) * BR + tl.arange(0, BR)
        cols = tl.program_id(1) * BO + tl.arange(0, BO)
        rmask = rows < R
        cmask = cols < O
        acc = tl.zeros([BR, BO], dtype=tl.float32)
        ss = tl.zeros([BR], dtype=tl.float32)
        for k0 in tl.static_range(0, KD, BK):
            k = k0 + tl.arange(0, BK)
            a = tl.load(a_ptr + rows[:, None] * KD + k[None, :], mask=rmask[:, None], other=0.0).to(tl.float32)
            if NORM:
                ss += tl.sum(a * a, axis=1)
                a = a * tl.load(nw_ptr + k).to(tl.float32)[None, :]
            w = tl.load(w_ptr + cols[None, :] * KD + k[:, None], mask=cmask[None, :], other=0.0)
            acc += tl.dot(a.to(w.dtype), w, input_precision=PREC)
        if NORM:  # the row's scale factors out of the product
            acc = acc * tl.rsqrt(ss / KD + eps)[:, None]
        o_ptrs = out_ptr + rows[:, None] * O + cols[None, :]
        omask = rmask[:, None] & cmask[None, :]
        if RES:
            acc += tl.load(o_ptrs, mask=omask, other=0.0).to(tl.float32)
        tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=omask)

    @triton.jit
    def _conv_seq(p_ptr, cw_ptr, cb_ptr, t, T, ch, col0, OC: tl.constexpr, K: tl.constexpr):
        """Causal depthwise conv + SiLU over the sequence at channels ``ch`` (input columns col0 + ch)."""
        acc = tl.load(p_ptr + t[:, None] * OC + col0 + ch[None, :], mask=(t < T)[:, None], other=0.0).to(tl.float32) \
            * tl.load(cw_ptr + ch * K + (K - 1)).to(tl.float32)[None, :] + tl.load(cb_ptr + ch).to(tl.float32)[None, :]
        for j in tl.static_range(1, K):
            src = t - j
            v = tl.load(p_ptr + src[:, None] * OC + col0 + ch[None, :], mask=((src >= 0) & (src < T))[:, None],
                        other=0.0).to(tl.float32)
            acc += v * tl.load(cw_ptr + ch * K + (K - 1 - j)).to(tl.float32)[None, :]
        return acc * tl.sigmoid(acc)

    @triton.jit
    def _ssd_seq(proj_ptr, cw_ptr, cb_ptr, dtb_ptr, alog_ptr, dd_ptr, y_ptr, T,
                 DI: tl.constexpr, H: tl.constexpr, P: tl.constexpr, N: tl.constexpr, G: tl.constexpr,
                 K: tl.constexpr, TB: tl.constexpr, HPB: tl.constexpr, PREC: tl.constexpr):
        """``HPB`` heads of one group for one sequence: the group's B and C (their conv and ``C Bᵀ``) once,
        then each head's x, decay and output."""
        b = tl.program_id(0)
        h0 = tl.program_id(1) * HPB
        g = h0 // (H // G)
        OC: tl.constexpr = 2 * DI + 2 * G * N + H  # in_proj width: z, x, B, C, dt
        base = proj_ptr + b * T * OC
        t = tl.arange(0, TB)
        valid = t < T
        p = tl.arange(0, P)
        n = tl.arange(0, N)
        bs = _conv_seq(base, cw_ptr, cb_ptr, t, T, DI + g * N + n, DI, OC, K)  # (TB, N)
        cs = _conv_seq(base, cw_ptr, cb_ptr, t, T, DI + G * N + g * N + n, DI, OC, K)
        cbt = tl.dot(cs, tl.trans(bs), input_precision=PREC)  # (TB, TB), shared by the group's heads
        causal = t[:, None] >= t[None, :]
        for i in tl.static_range(HPB):
            h = h0 + i
            xs = _conv_seq(base, cw_ptr, cb_ptr, t, T, h * P + p, DI, OC, K)  # (TB, P)
            dt = tl.load(base + t * OC + 2 * DI + 2 * G * N + h, mask=valid, other=0.0).to(tl.float32) \
                + tl.load(dtb_ptr + h).to(tl.float32)
            dt = tl.where(dt > 20.0, dt, tl.log(1.0 + tl.exp(dt)))  # softplus (PyTorch's threshold 20)
            acs = tl.cumsum(dt * -tl.exp(tl.load(alog_ptr + h).to(tl.float32)), axis=0)  # (TB,) log-decay to t
            L = tl.exp(tl.where(causal, acs[:, None] - acs[None, :], float("-inf")))
            y = tl.dot(cbt * L, xs * dt[:, None], input_precision=PREC) + tl.load(dd_ptr + h).to(tl.float32) * xs
            z = tl.load(base + t[:, None] * OC + h * P + p[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
            y = y * (z * tl.sigmoid(z))
            tl.store(y_ptr + (b * T + t[:, None]) * DI + h * P + p[None, :], y.to(y_ptr.dtype.element_ty),
                     mask=valid[:, None])

    @triton.jit
    def _attn_seq(qkv_ptr, o_ptr, T, scale, D: tl.constexpr, HD: tl.constexpr, TB: tl.constexpr,
                  PREC: tl.constexpr):
        b = tl.program_id(0)
        h = tl.program_id(1)
        t = tl.arange(0, TB)
        e = tl.arange(0, HD)
        valid = t < T
        rows = (b * T + t[:, None]) * (3 * D) + h * HD + e[None, :]
        q = tl.load(qkv_ptr + rows, mask=valid[:, None], other=0.0).to(tl.float32)
        k = tl.load(qkv_ptr + rows + D, mask=valid[:, None], other=0.0).to(tl.float32)
        v = tl.load(qkv_ptr + rows + 2 * D, mask=valid[:, None], other=0.0).to(tl.float32)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        s = tl.where((t[:, None] >= t[None, :]) & valid[None, :], s, float("-inf"))
        pr = tl.exp(s - tl.max(s, axis=1)[:, None])
        pr = pr / tl.sum(pr, axis=1)[:, None]
        o = tl.dot(pr, v, input_precision=PREC)
        tl.store(o_ptr + (b * T + t[:, None]) * D + h * HD + e[None, :], o.to(o_ptr.dtype.element_ty), mask=valid[:, None])


# Launch settings by the call's rows (batch × tokens), tuned on one H200 (scripts/device/fused_tiles.py,
# docs/experiments/kernels.md): (projection rows, outputs, warps, Mamba heads per SSD program). Below LARGE_ROWS (a
# batch of 16 is 400–480 rows) small tiles and one head per program keep every SM busy; from there (a
# batch of 256: 6,400–7,680 rows) larger tiles and 4 heads sharing their group's B, C and C·Bᵀ.
SMALL_TILE = (32, 64, 4, 1)
LARGE_TILE = (64, 128, 4, 4)
LARGE_ROWS = 2048


class FusedSequence:
    """:meth:`agents.hybrid.HybridBackbone.forward` for one-shot sequences (≤ ``ONE_CHUNK_MAX`` tokens,
    at most the attention window; no state in or out) with three Triton kernels per layer. Inference
    only (no autograd). Static shapes and no host sync, so a caller can capture it in a CUDA graph.

    ``FusedSequence(backbone)(x)`` with ``x`` (b, T, d) gives the final-normed hidden states, as the
    backbone's ``forward``; longer sequences fall back to that forward. Activations between kernels
    are in the weights' dtype (or ``activations``); the residual stream keeps ``x``'s dtype, as in the PyTorch forward. The attention
    layers' q/k/v weights are concatenated once here: build it after training, not before.
    Exactness: equal to the PyTorch forward to float tolerance (tested with ``TRITON_INTERPRET=1``).
    Under ``torch.compile`` the call is left out of the compiled graph (the token embedding and the heads
    around it are compiled; the kernels run as written).
    """

    def __init__(self, backbone, block_rows: int | None = None, block_out: int | None = None, block_k: int = 64,
                 linear_warps: int | None = None, seq_warps: int | None = None,
                 heads_per_program: int | None = None, activations: torch.dtype | None = None):
        """``block_rows`` × ``block_out``: the projections' tile, ``linear_warps`` their warps per program;
        ``heads_per_program``: Mamba heads of one group per program of the SSD kernel (they share the
        group's B, C and ``C Bᵀ``). ``None`` picks by the call's rows (batch × tokens): :data:`SMALL_TILE`
        below :data:`LARGE_ROWS`, :data:`LARGE_TILE` from there (half-precision weights only). ``seq_warps``: the Mamba and attention
        kernels' warps (``None``: 4, 8 from 128 tokens). ``activations``: the dtype of the buffers between
        kernels (``None``: the weights' dtype — float32 for a float32 model, bf16 for a bf16 one)."""
        if triton is None:
            raise RuntimeError("the fused sequence forward needs triton (pip install triton; a CUDA GPU)")
        self.backbone = backbone
        self.tile = (block_rows, block_out, linear_warps, heads_per_program)
        self.seq_warps = seq_warps
        self.activations = activations
        self.layers = []
        for norm, m in zip(backbone.norms, backbone.mixers):
            if m.kind == "m":
                dims = [m.P, m.N, norm.weight.numel(), m.di]
                self.layers.append(("m", norm, m, m.in_proj.weight))
            elif m.kind == "a":
                dims = [m.hd, norm.weight.numel()]
                self.layers.append(("a", norm, m, torch.cat([m.q_proj.weight, m.k_proj.weight, m.v_proj.weight])))
            else:  # pragma: no cover
                raise TypeError(f"no fused forward for a mixer of kind {m.kind!r}")
            if not all(_pow2(v) and v >= 16 for v in dims):
                raise ValueError(f"the fused sequence forward needs power-of-two widths ≥ 16, got {dims}")
        self.bk = min(block_k, min(norm.weight.numel() for _, norm, _, _ in self.layers))
        # the longest sequence taken: the one-chunk bound of the PyTorch path, and within the attention window
        self.max_len = min([ONE_CHUNK_MAX] + [m.window for k, _, m, _ in self.layers if k == "a"])
        # float32 weights: IEEE float32 products (the PyTorch forward's function, not TF32's rounding);
        # bf16 weights: bf16 projections, TF32 for the float32 products inside the mixers
        self.prec = "ieee" if self.layers[0][3].dtype == torch.float32 else "tf32"

    def _tile(self, rows: int) -> tuple[int, int, int, int]:
        # float32 weights (IEEE products, no tensor cores) keep the small launch at every size: the large
        # one stalled there on the GPU (a float32 CJS student at batch 256)
        auto = SMALL_TILE if rows < LARGE_ROWS or self.prec == "ieee" else LARGE_TILE
        return tuple(v if v is not None else a for v, a in zip(self.tile, auto))

    def _lin(self, a, norm_w, eps, w, out, res: bool):
        R, KD = a.shape
        O = w.shape[0]
        br, bo, warps, _ = self._tile(R)
        _linear[(triton.cdiv(R, br), triton.cdiv(O, bo))](
            a, norm_w if norm_w is not None else w, w, out, R, O, eps, KD=KD, NORM=norm_w is not None, RES=res,
            BR=br, BO=bo, BK=min(self.bk, KD), PREC=self.prec, num_warps=warps)

    @torch.compiler.disable  # under torch.compile the kernels run as they are, between compiled parts
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, T, d = x.shape
        if T > self.max_len:
            return self.backbone(x)
        TB = max(16, triton.next_power_of_2(T))
        warps = self.seq_warps or (8 if TB >= 128 else 4)
        x = x.reshape(b * T, d).clone(memory_format=torch.contiguous_format)  # the residual stream, in place
        buffers = {}  # activations between kernels, one set per call shared by the layers
        act = self.activations or self.layers[0][3].dtype
        heads = max(1, self._tile(b * T)[3])

        def buf(name, width):
            if name not in buffers:
                buffers[name] = torch.empty(b * T, width, device=x.device, dtype=act)
            return buffers[name]

        for kind, norm, m, w_in in self.layers:
            proj = buf("proj-" + kind, w_in.shape[0])
            self._lin(x, norm.weight, norm.eps, w_in, proj, res=False)
            if kind == "m":
                y = buf("y", m.di)
                hpb = math.gcd(heads, m.H // m.G)  # a block never spans two groups
                _ssd_seq[(b, m.H // hpb)](proj, m.conv_weight, m.conv_bias, m.dt_bias, m.A_log, m.D, y, T,
                                          DI=m.di, H=m.H, P=m.P, N=m.N, G=m.G, K=m.K, TB=TB, HPB=hpb,
                                          PREC=self.prec, num_warps=warps)
                self._lin(y, m.norm.weight, m.norm.eps, m.out_proj.weight, x, res=True)
            else:
                o = buf("o", d)
                _attn_seq[(b, m.h)](proj, o, T, 1.0 / math.sqrt(m.hd), D=d, HD=m.hd, TB=TB, PREC=self.prec,
                                num_warps=warps)
                self._lin(o, None, 0.0, m.o_proj.weight, x, res=True)
        return self.backbone.final_norm(x.reshape(b, T, d))
