"""CWR — cross-architecture weight reuse: initialise the hybrid Mamba student from the teacher.

Mapping (after *The Mamba in the Llama*, Wang et al. 2024: linear attention ``y_t = Σ_j (q_t·k_j) v_j``
is an SSM with ``C ← q``, ``B ← k``, ``x ← v`` and no decay):

* **Layers**: student layer ``i`` of ``n`` takes teacher layer ``round(i·(L−1)/(n−1))`` (first to first,
  last to last, spread evenly).
* **Residual basis** ``P`` (d_s × D): the student's width ``d_s`` is smaller than the teacher's ``D``.
  ``P`` holds the top ``d_s`` right singular vectors of the mapped layers' stacked ``[W_Q; W_K; W_V]``
  (the directions of the residual stream the teacher's attention reads most). Every teacher weight is
  seen through it: an input side ``W`` becomes ``W Pᵀ``, an output side ``P W``. The teacher's RMSNorm
  gains are folded into the weights that follow them; the student's norm gains start at 1.
* **Mamba block**: ``C`` (group g) ← the Q rows of teacher head ``q(g)``, ``B`` ← the K rows of its KV head
  (``d_state`` = the teacher's head dim, so no truncation there); ``x`` and ``out_proj`` ← the truncated
  SVD of the value–output circuit ``P (Σ_h W_O,h W_V,kv(h)) Pᵀ`` (rank ``min(d_inner, d_s)``, split as
  ``√Σ`` on both sides; unused ``out_proj`` columns start at 0). The conv starts as the identity (last
  tap 1), ``D`` = 0 and ``A`` = −1 with Mamba-2's small ``dt``: close to linear attention with slow decay.
  The gate ``z`` and ``dt`` keep their random initialisation (attention has no counterpart).
* **Attention block**: student head ``j`` ← teacher query head ``j`` and its KV head, through ``P``.
* **Encoder / embeddings / head**: same shapes are copied; the layers that write into or read from the
  teacher's width go through ``P`` (encoder's last linear, return/action/time embeddings, the head with
  the teacher's final norm folded in).
"""

from __future__ import annotations

import torch

from agents.hybrid import AttentionMixer, MambaMixer
from agents.student import ABRStudent


def _weight(module) -> torch.Tensor:
    """A linear layer's effective weight, LoRA deltas (peft) merged in."""
    if hasattr(module, "base_layer"):
        w = module.base_layer.weight.detach().float().clone()
        for name in getattr(module, "active_adapters", []):
            if name in getattr(module, "lora_A", {}):
                w += module.get_delta_weight(name).float()
        return w
    return module.weight.detach().float()


def _base_model(backbone):
    return backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    if n_student == 1:
        return [n_teacher - 1]
    return [round(i * (n_teacher - 1) / (n_student - 1)) for i in range(n_student)]


def _attention_weights(base, layers) -> dict[int, dict[str, torch.Tensor]]:
    """Effective Q/K/V (input norm gain folded in) and O weights of the given teacher layers."""
    attn = {}
    for t in sorted(set(layers)):
        layer = base.layers[t]
        g = layer.input_layernorm.weight.detach().float()
        sa = layer.self_attn
        attn[t] = {"q": _weight(sa.q_proj) * g, "k": _weight(sa.k_proj) * g, "v": _weight(sa.v_proj) * g,
                   "o": _weight(sa.o_proj)}
    return attn


def residual_basis(attn: dict, ds: int) -> tuple[torch.Tensor, float]:
    """``P`` (ds, D): top right singular vectors of the stacked Q/K/V weights; and the energy it keeps."""
    stacked = torch.cat([torch.cat([w["q"], w["k"], w["v"]]) for w in attn.values()])
    _, S, Vh = torch.linalg.svd(stacked, full_matrices=False)
    return Vh[:ds], float((S[:ds] ** 2).sum() / (S ** 2).sum())


@torch.no_grad()
def cwr_backbone(backbone, teacher_backbone) -> tuple[torch.Tensor, dict, object]:
    """Map the teacher's attention layers into a :class:`agents.student.HybridBackbone`; returns the
    residual basis ``P``, a report and the teacher's base model (for the task-specific parts)."""
    base = _base_model(teacher_backbone)
    tc = base.config
    D, n_q = tc.hidden_size, tc.num_attention_heads
    n_kv = getattr(tc, "num_key_value_heads", n_q) or n_q
    hd = getattr(tc, "head_dim", None) or D // n_q
    ds = backbone.final_norm.weight.shape[0]
    if ds > D:
        raise ValueError(f"CWR: student width {ds} exceeds the teacher's {D}")
    mapping = layer_map(len(backbone.mixers), len(base.layers))
    attn = _attention_weights(base, mapping)
    P, energy = residual_basis(attn, ds)
    report = {"layer_map": mapping, "basis_energy": energy, "ov_energy": []}
    group = n_q // n_kv

    def head(w, h):
        return w[h * hd:(h + 1) * hd]

    for i, (mixer, norm) in enumerate(zip(backbone.mixers, backbone.norms)):
        w = attn[mapping[i]]
        norm.weight.fill_(1.0)
        dev = mixer.out_proj.weight.device if isinstance(mixer, MambaMixer) else mixer.o_proj.weight.device
        if isinstance(mixer, MambaMixer):
            di, G, N = mixer.di, mixer.G, mixer.N
            W = mixer.in_proj.weight  # rows: z | x | B | C | dt
            for gi in range(G):
                kv = gi % n_kv
                k_rows = head(w["k"], kv)[:N] @ P.T
                q_rows = head(w["q"], kv * group)[:N] @ P.T
                n = k_rows.shape[0]
                W[2 * di + gi * N: 2 * di + gi * N + n] = k_rows.to(dev)
                W[2 * di + G * N + gi * N: 2 * di + G * N + gi * N + n] = q_rows.to(dev)
            ov = sum(w["o"][:, h * hd:(h + 1) * hd] @ head(w["v"], h // group) for h in range(n_q))
            U, s, Vh2 = torch.linalg.svd(P @ ov @ P.T)
            r = min(di, ds)
            root = s[:r].sqrt()
            W[di:di + r] = (root[:, None] * Vh2[:r]).to(dev)
            mixer.out_proj.weight.zero_()
            mixer.out_proj.weight[:, :r] = (U[:, :r] * root).to(dev)
            report["ov_energy"].append(float((s[:r] ** 2).sum() / (s ** 2).sum()))
            mixer.conv_weight.zero_()
            mixer.conv_weight[:, -1] = 1.0
            mixer.conv_bias.zero_()
            mixer.D.zero_()
            mixer.A_log.zero_()  # A = -1
        elif isinstance(mixer, AttentionMixer):
            h_s, hd_s = mixer.h, mixer.hd
            n = min(hd_s, hd)
            for j in range(h_s):
                qh = j % n_q
                sl = slice(j * hd_s, j * hd_s + n)
                mixer.q_proj.weight[sl] = (head(w["q"], qh)[:n] @ P.T).to(dev)
                mixer.k_proj.weight[sl] = (head(w["k"], qh // group)[:n] @ P.T).to(dev)
                mixer.v_proj.weight[sl] = (head(w["v"], qh // group)[:n] @ P.T).to(dev)
                mixer.o_proj.weight[:, sl] = (P @ w["o"][:, qh * hd:qh * hd + n]).to(dev)
    backbone.final_norm.weight.fill_(1.0)
    return P, report, base


@torch.no_grad()
def cwr_init(student: ABRStudent, teacher) -> dict:
    """Overwrite ``student``'s weights from ``teacher`` (an :class:`agents.teacher.ABRTeacher`); returns a
    report (layer map, energy kept by each truncation)."""
    P, report, base = cwr_backbone(student.backbone, teacher.backbone)
    # encoder, embeddings, head
    sd_t = teacher.embed_state.state_dict()
    last = max(k for k in sd_t if k.startswith("proj.")).split(".")[1]  # index of the final Linear
    for k, v in sd_t.items():
        target = dict(student.embed_state.named_parameters())[k]
        if k.startswith(f"proj.{last}."):
            v = P.to(v.device) @ v  # weight (D, in) -> (d_s, in); bias (D,) -> (d_s,)
        target.copy_(v.to(target.device))
    dev = student.head.weight.device
    Pd = P.to(teacher.head.weight.device)
    student.embed_return.weight.copy_((Pd @ teacher.embed_return.weight).to(dev))
    student.embed_return.bias.copy_((Pd @ teacher.embed_return.bias).to(dev))
    student.embed_action.weight.copy_((teacher.embed_action.weight @ Pd.T).to(dev))
    n_t = min(student.embed_time.weight.shape[0], teacher.embed_time.weight.shape[0])
    student.embed_time.weight[:n_t] = (teacher.embed_time.weight[:n_t] @ Pd.T).to(dev)
    g_final = base.norm.weight.detach().float().to(Pd.device)
    student.head.weight.copy_(((teacher.head.weight * g_final) @ Pd.T).to(dev))
    student.head.bias.copy_(teacher.head.bias.to(dev))
    return report


@torch.no_grad()
def cwr_init_vp(student, teacher) -> dict:
    """CWR for viewport prediction (:mod:`agents.vp_llm`): the backbone as for ABR; the token input
    layer, query and position embeddings and the head through ``P``."""
    P, report, base = cwr_backbone(student.backbone, teacher.backbone)
    t, s = teacher.tokens, student.tokens
    Pd = P.to(t.inp.weight.device)
    dev = s.inp.weight.device
    s.inp.weight.copy_((Pd @ t.inp.weight).to(dev))
    s.inp.bias.copy_((Pd @ t.inp.bias).to(dev))
    s.query.copy_((t.query @ Pd.T).to(dev))
    s.pos.weight.copy_((t.pos.weight @ Pd.T).to(dev))
    g_final = base.norm.weight.detach().float().to(Pd.device)
    student.head.weight.copy_(((teacher.head.weight * g_final) @ Pd.T).to(dev))
    student.head.bias.copy_(teacher.head.bias.to(dev))
    return report


@torch.no_grad()
def cjs_task_copy(student, teacher, P: torch.Tensor, base) -> None:
    """The CJS task parts (:mod:`agents.cjs_llm`): the DAG encoder and the heads past the projections
    have the same shapes and are copied; the job-token layer, the age-rank embedding and the decide
    token go through ``P``; the projections reading the backbone's output take the teacher's final
    norm gain folded in and read through ``Pᵀ``. The token LayerNorm keeps its identity start."""
    t, s = teacher.task, student.task
    dev = s.tok.weight.device
    Pd = P.to(t.tok.weight.device)
    for name in ("enc", "stage_head", "wait_head", "limit_head", "j_skip", "q_skip") + (("wait_job",) if t.wait_job is not None else ()):
        getattr(s, name).load_state_dict({k: v.to(dev) for k, v in getattr(t, name).state_dict().items()})
    s.tok.weight.copy_((Pd @ t.tok.weight).to(dev))
    s.tok.bias.copy_((Pd @ t.tok.bias).to(dev))
    s.rank.weight.copy_((t.rank.weight @ Pd.T).to(dev))
    s.decide.copy_((Pd @ t.decide).to(dev))
    g_final = base.norm.weight.detach().float().to(Pd.device)
    for name in ("q_proj", "j_proj"):
        getattr(s, name).weight.copy_(((getattr(t, name).weight * g_final) @ Pd.T).to(dev))
        getattr(s, name).bias.copy_(getattr(t, name).bias.to(dev))


@torch.no_grad()
def cwr_init_cjs(student, teacher) -> dict:
    """CWR for cluster job scheduling: the backbone as for ABR, the task parts by :func:`cjs_task_copy`."""
    P, report, base = cwr_backbone(student.backbone, teacher.backbone)
    cjs_task_copy(student, teacher, P, base)
    return report
