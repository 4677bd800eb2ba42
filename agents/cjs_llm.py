"""Cluster job scheduling with the NetLLM-style teacher and the Mamba student (same tokens, same heads).

Per decision (NetLLM's CJS design: a GNN encodes the job DAGs, the LLM reasons over the encodings, a
networking head picks the stage and its parallelism):

* **Encoder**: :class:`agents.cjs_gnn.DAGEncoder` — stage embeddings with child→parent message passing
  and one summary per job.
* **Tokens**: one per job in the system, oldest first (its summary and job features through a linear
  layer, plus a learned embedding of its age rank), then one learned *decide* token. The backbone is
  causal, so the decide token reads every job; a batch pads its shorter rows *after* their decide
  token, where no real token can see them — a row's outputs do not depend on what it is batched with
  (tested), for the LLM as for the Mamba student, with no attention mask.
* **Heads** (pointer-style, as Decima's): each stage's score reads its own embedding and features, its
  job token's output and the decide token's output; "wait" reads the decide token; the limit head
  scores 1..E executors for each job from its token and the decide token. A residual path around the
  backbone adds the encoder's job summaries (and their sum, for the decide token) to what the heads
  read, so the backbone learns a correction to a GNN scheduler rather than all of it.
* **Start** (``distill.cjs --task-init``, default the shipped Decima GNN): :func:`anchor_to_gnn` copies a
  trained GNN into the encoder and heads and zeroes the projections from the backbone, so training
  starts from a scheduler that already beats Fair and adapts the LLM to improve on it.

The forward contract is :class:`agents.cjs_gnn.DecimaGNN`'s (masked stage logits (B, J·S + 1), limit
logits (B, J, E)), so :class:`agents.cjs_gnn.ModelScheduler`, the lockstep rollouts and the DAgger
trainer serve all three schedulers.

Deviations from NetLLM, stated: no return-to-go token and no window of earlier decisions — the
observation holds the whole cluster state, and the return-to-go of a streaming workload scales with
arrivals the scheduler cannot know; the teacher is adapted by imitation of the pool's best scheduler
with DAgger relabelling (``distill.cjs``) rather than return-conditioned.

* :class:`CJSTeacher` — the LLM backbone (SmolLM2-135M by default, frozen, LoRA rank 128 as NetLLM uses
  for CJS) fed with ``inputs_embeds``.
* :class:`CJSStudent` — the hybrid Mamba backbone of :mod:`agents.student`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import PRETRAINED_DIR, CheckpointError, load_weights, read_checkpoint, read_meta, write_checkpoint
from .cjs import SHARE_TOL, WFAIR_EXPONENT
from .cjs_gnn import DAGEncoder, _mlp
from .hybrid import FusedInference, HybridShape

PRETRAINED_TEACHER = PRETRAINED_DIR / "teacher_cjs"
PRETRAINED_STUDENT = PRETRAINED_DIR / "student_cjs"


@dataclass(frozen=True)
class CJSTeacherConfig:
    backbone: str = "smollm2-135m"
    lora_rank: int = 32  # NetLLM uses 128 for CJS; 32 keeps the shipped adapter under 10 MB (as the ABR teacher)
    lora_alpha: int = 32
    hidden: int = 64  # DAG encoder and head width
    rounds: int = 8  # message-passing steps (≥ TPC-H DAG depth)
    node_features: int = 5
    job_features: int = 6
    num_executors: int = 50
    max_stages: int = 20
    max_jobs: int = 64  # the env's job slots
    wait_from_jobs: bool = True  # the "wait" score also reads each job (as the Decima GNN's)


@dataclass(frozen=True)
class CJSStudentConfig(HybridShape):
    hidden: int = 64
    rounds: int = 8
    node_features: int = 5
    job_features: int = 6
    num_executors: int = 50
    max_stages: int = 20
    max_jobs: int = 64
    wait_from_jobs: bool = True
    share_features: bool = False  # the jobs also carry wfair's statistics (share_features), from the observation

    def backbone(self):
        return self.hybrid(max_len=self.max_jobs + 1)


SHARE_FEATURES = 4  # columns share_features adds to each job's features


def share_features(jobf: torch.Tensor, num_executors: int, exponent: float = WFAIR_EXPONENT) -> torch.Tensor:
    """wfair's per-job statistics (:class:`agents.cjs.WeightedFair`) from the job features (..., J, 6):
    its share over the executors ``⌈E·w^½ / Σ w^½⌉`` (w: remaining work), the share minus the job's
    executors (both / E), whether the job is below its share or has idle executors of its own (wfair's
    candidates), and its rank by remaining work among the present jobs / their number. Zero for absent
    jobs. The decision stays the model's: these are statistics of the state, as Decima's features are."""
    E = num_executors
    present = jobf[..., 0] > 0
    work = jobf[..., 4].float().clamp_min(1e-3)
    w = work.pow(exponent) * present
    share = torch.ceil(E * w / w.sum(-1, keepdim=True).clamp_min(1e-12) - SHARE_TOL).clamp_min(1)
    execs, idle = torch.round(jobf[..., 1].float() * E), torch.round(jobf[..., 5].float() * E)
    below = ((execs < share) | (idle > 0)) & present
    key = torch.where(present, work, torch.full_like(work, float("inf")))
    rank = (key[..., None, :] < key[..., :, None]).sum(-1)  # present jobs with less work left
    n = present.sum(-1, keepdim=True).clamp_min(1)
    out = torch.stack([share / E, (share - execs) / E, below.float(), rank / n], -1)
    return (out * present[..., None]).to(jobf.dtype)


class CJSTokensHeads(nn.Module):
    """Encoder, job/decide tokens and the pointer heads around any causal backbone of width ``d``."""

    def __init__(self, cfg, d: int):
        super().__init__()
        H = cfg.hidden
        self.share, self.num_executors = bool(getattr(cfg, "share_features", False)), cfg.num_executors
        G = cfg.job_features + (SHARE_FEATURES if self.share else 0)
        self.enc = DAGEncoder(H, cfg.rounds, cfg.node_features, G, cfg.max_stages)
        self.tok = nn.Linear(H + G, d)
        self.rank = nn.Embedding(cfg.max_jobs, d)  # age rank of the job in the system
        self.decide = nn.Parameter(torch.randn(d) * 0.02)
        self.norm = nn.LayerNorm(d)
        self.q_proj = nn.Linear(d, H)
        self.j_proj = nn.Linear(d, H)
        # a residual path around the backbone: the heads also read the encoder's job summaries (and
        # their sum), so the backbone learns a correction to a GNN scheduler rather than all of it
        self.j_skip = nn.Linear(H, H)
        self.q_skip = _mlp(H, H, H)
        self.stage_head = _mlp(3 * H + cfg.node_features, H, 1)
        self.wait_head = _mlp(H, H, 1)
        self.wait_job = _mlp(2 * H, H, 1) if cfg.wait_from_jobs else None
        self.limit_head = _mlp(2 * H, H, cfg.num_executors)

    def tokens(self, obs: dict[str, torch.Tensor]):
        """(B, J + 1, d) tokens (row b: its K_b jobs, the decide token at K_b, then padding), stage
        embeddings, job summaries and K_b."""
        jobf = obs["job_features"]
        if self.share:
            jobf = torch.cat([jobf, share_features(jobf, self.num_executors)], -1)
            obs = {**obs, "job_features": jobf}
        h, y = self.enc(obs)
        B, J = jobf.shape[:2]
        n_jobs = (jobf[..., 0] > 0).sum(1)  # present jobs are the first slots (age order)
        jobs = self.tok(torch.cat([y, jobf], -1)) + self.rank.weight[:J]
        x = torch.cat([jobs, jobs.new_zeros(B, 1, jobs.shape[-1])], 1)
        at = (torch.arange(J + 1, device=x.device)[None] == n_jobs[:, None])[..., None]  # (B, J + 1, 1)
        x = torch.where(at, self.decide.to(x.dtype), x)
        return self.norm(x), h, y, n_jobs

    def heads(self, out: torch.Tensor, h: torch.Tensor, y: torch.Tensor, n_jobs: torch.Tensor,
              obs: dict[str, torch.Tensor]):
        x = obs["node_features"]
        B, J, S, _ = x.shape
        out = out.to(self.q_proj.weight.dtype)  # the backbone may run in bf16 autocast
        q = self.q_proj(out[torch.arange(B, device=out.device), n_jobs]) + self.q_skip(y.sum(1))  # (B, H)
        j = self.j_proj(out[:, :J]) + self.j_skip(y)  # (B, J, H)
        stage_in = torch.cat([h, j[:, :, None].expand(-1, -1, S, -1), q[:, None, None].expand(-1, J, S, -1), x], -1)
        stage = self.stage_head(stage_in).reshape(B, J * S)
        wait = self.wait_head(q)
        if self.wait_job is not None:  # minus a soft maximum over jobs of how much each wants executors
            want = self.wait_job(torch.cat([j, q[:, None].expand(-1, J, -1)], -1))[..., 0]  # (B, J)
            wait = wait - torch.logsumexp(want.masked_fill(obs["job_features"][..., 0] == 0, -1e9), -1, keepdim=True)
        logits = torch.cat([stage, wait], -1).masked_fill(obs["stage_mask"] == 0, -1e9)
        limits = self.limit_head(torch.cat([j, q[:, None].expand(-1, J, -1)], -1))
        return logits, limits


@torch.no_grad()
def anchor_to_gnn(task: CJSTokensHeads, gnn: nn.Module) -> dict:
    """Start the task parts as a trained :class:`agents.cjs_gnn.DecimaGNN` of the same width: its
    encoder, heads and global summary (as ``q_skip``) copied, ``j_skip`` the identity, and the two
    projections that read the backbone zeroed — the scheduler then *is* that GNN, whatever the
    backbone, and training moves it only where the backbone's reading of the jobs helps (the backbone
    still gets gradients: they flow once the projections leave zero, as LoRA's B does)."""
    g = gnn.cfg
    H = task.q_proj.out_features
    same = (g.hidden == H and task.enc.rounds == gnn.enc.rounds and task.wait_job is not None
            and gnn.wait_job is not None and gnn.enc.stage_pos is not None
            and task.limit_head[-1].out_features == g.num_executors)
    if not same:
        raise ValueError(f"anchor GNN {g} does not match the task parts (hidden {H}, rounds "
                         f"{task.enc.rounds}, wait_from_jobs, stage positions, executors)")
    for mine, theirs in (("enc", "enc"), ("q_skip", "glob"), ("stage_head", "stage_head"),
                         ("wait_head", "wait_head"), ("wait_job", "wait_job"), ("limit_head", "limit_head")):
        getattr(task, mine).load_state_dict(getattr(gnn, theirs).state_dict())
    task.j_skip.weight.copy_(torch.eye(H))
    task.j_skip.bias.zero_()
    for proj in (task.q_proj, task.j_proj):
        proj.weight.zero_()
        proj.bias.zero_()
    return {"task_init": "decima-gnn", "gnn_hidden": g.hidden}


class CJSTeacher(nn.Module):
    def __init__(self, cfg: CJSTeacherConfig, backbone: nn.Module | None = None):
        super().__init__()
        from .teacher import frozen_with_lora, load_backbone

        self.cfg = cfg
        backbone = backbone if backbone is not None else load_backbone(cfg.backbone)
        self.backbone = backbone = frozen_with_lora(backbone, cfg.lora_rank, cfg.lora_alpha)
        self.task = CJSTokensHeads(cfg, backbone.config.hidden_size)

    def forward(self, obs: dict[str, torch.Tensor]):
        x, h, y, n = self.task.tokens(obs)
        dtype = next(self.backbone.parameters()).dtype
        # on CUDA the backbone runs in bf16 autocast (no weight-cast cache, so CUDA graphs can capture it)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda, cache_enabled=False):
            out = self.backbone(inputs_embeds=x.to(dtype), use_cache=False).last_hidden_state
        return self.task.heads(out, h, y, n, obs)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        from .teacher import trained_tensors

        return trained_tensors(self)


class CJSStudent(FusedInference, nn.Module):
    def __init__(self, cfg: CJSStudentConfig):
        super().__init__()
        from .hybrid import HybridBackbone

        self.cfg = cfg
        self.backbone = HybridBackbone(cfg.backbone())
        self.task = CJSTokensHeads(cfg, cfg.d_model)

    def forward(self, obs: dict[str, torch.Tensor]):
        x, h, y, n = self.task.tokens(obs)
        return self.task.heads(self.run_backbone(x), h, y, n, obs)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters()}


def widen_for_share_features(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A checkpoint without ``share_features`` for a model with them: the two layers that read the job
    features get zero columns for the new ones, so the model starts as the checkpoint's scheduler."""
    out = dict(weights)
    own = model.state_dict()
    for k in ("task.enc.job.0.weight", "task.tok.weight"):
        if k in out and out[k].shape[1] + SHARE_FEATURES == own[k].shape[1]:
            out[k] = torch.cat([out[k], out[k].new_zeros(out[k].shape[0], SHARE_FEATURES)], 1)
    return out


def save_cjs(model: nn.Module, folder: str | Path, extra: dict) -> Path:
    """Teacher: LoRA + encoder + tokens + heads; student: everything — bf16 safetensors + JSON config."""
    kind = "cjs-teacher" if isinstance(model, CJSTeacher) else "cjs-student"
    tensors = {k: v.to(torch.bfloat16).cpu() for k, v in model.trainable_state().items()}
    return write_checkpoint(folder, tensors, kind, model.cfg, {"task": "cjs", **extra},
                            weights="adapter.safetensors" if kind == "cjs-teacher" else "model.safetensors")


def load_cjs(folder: str | Path, device: str = "cpu", backbone: nn.Module | None = None):
    folder = Path(folder)
    kind = read_meta(folder, "python -m distill.cjs teacher|student").get("model")
    if kind == "cjs-teacher":
        from .teacher import load_trained

        weights, cfg, meta = read_checkpoint(folder, CJSTeacherConfig, "python -m distill.cjs teacher",
                                             weights="adapter.safetensors", kind=kind, task="cjs")
        model = CJSTeacher(cfg, backbone)
        load_trained(model, weights, folder)
    elif kind == "cjs-student":
        weights, cfg, meta = read_checkpoint(folder, CJSStudentConfig, "python -m distill.cjs student", kind=kind,
                                             task="cjs")
        model = CJSStudent(cfg)
        load_weights(model, {k: v.float() for k, v in weights.items()}, folder)
    elif kind == "decima-gnn":  # the reference scheduler, so the same evaluation can score it
        from .cjs_gnn import load_checkpoint

        model, meta = load_checkpoint(folder)
    else:
        raise CheckpointError(f"{folder}/config.json: model {kind!r} is not a CJS teacher, student or Decima GNN")
    return model.to(device).eval(), meta


def for_inference(model: nn.Module) -> nn.Module:
    """A teacher made cheaper to run, for evaluation only: its LoRA adapters merged into the frozen
    weights (W + s·BA, computed in fp32: the same function up to rounding, about half the backbone's
    kernels per decision) and, on CUDA, the backbone's linear weights stored in bf16, the dtype its
    autocast multiplies in (no cast of every weight at every decision). Norms and rotary tables keep
    their dtype. A student on CUDA with triton runs its backbone in fused Triton kernels
    (:meth:`CJSStudent.fuse`; float32 products as PyTorch's). The merged model has no LoRA tensors: do not
    save it."""
    if isinstance(model, CJSStudent):
        from .hybrid.kernels import available

        device = next(model.parameters()).device
        if device.type == "cuda" and available(device):
            model.fuse()
        return model.eval()
    if not isinstance(model, CJSTeacher):
        return model
    if hasattr(model.backbone, "merge_and_unload"):  # a peft model (lora_rank > 0)
        model.backbone = model.backbone.merge_and_unload()
    if next(model.parameters()).is_cuda:
        for m in model.backbone.modules():
            if isinstance(m, nn.Linear):
                m.to(torch.bfloat16)
    return model.eval()


class GraphedForward:
    """The model's forward in CUDA graphs: inputs padded to a fixed batch and to a few job-slot
    widths (one graph per width, captured on first use), so each decision is one graph replay. Valid
    because a row's outputs do not depend on the padding (causal backbone, padding after the decide
    token; padded jobs are absent). Parameters are read in place, so training between calls is seen."""

    def __init__(self, model: nn.Module, batch: int, widths=(8, 16, 24, 32, 48, 64)):
        self.model, self.batch, self.widths = model, batch, sorted(widths)
        self.graphs: dict[int, tuple] = {}
        self.failed = ""  # why capture failed (then every call runs the model eagerly)

    def _capture(self, K: int, like: dict[str, torch.Tensor]):
        S = like["node_features"].shape[2]
        static = {k: torch.zeros((self.batch, K, *v.shape[2:]) if k != "stage_mask" else (self.batch, K * S + 1),
                                 dtype=v.dtype, device=v.device) for k, v in like.items()}
        static["job_features"][:, 0, 0] = 1  # one present job per padded row
        static["stage_mask"][:, -1] = 1
        stream = torch.cuda.Stream(like["node_features"].device)
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(2):
                self.model(static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            out = self.model(static)
        self.graphs[K] = (graph, static, out)

    def __call__(self, obs: dict[str, torch.Tensor]):
        B, K, S = obs["node_features"].shape[:3]
        width = next((w for w in self.widths if w >= K), None)
        if B > self.batch or width is None or self.failed:
            return self.model(obs)
        if width not in self.graphs:
            try:
                self._capture(width, obs)
            except Exception as err:  # noqa: BLE001 - fall back to eager, and say so
                self.failed = f"{type(err).__name__}: {err}"[:300]
                print(f"GraphedForward: CUDA-graph capture failed, running eagerly ({self.failed})", flush=True)
                return self.model(obs)
        graph, static, out = self.graphs[width]
        for k, v in obs.items():
            dst = static[k]
            if k == "stage_mask":
                dst[:B, : K * S].copy_(v[:, :-1])
                dst[:B, K * S: width * S].zero_()
                dst[:B, -1].copy_(v[:, -1])
            else:
                dst[:B, :K].copy_(v)
                dst[:B, K:].zero_()
        graph.replay()
        logits, limits = out
        return torch.cat([logits[:B, : K * S], logits[:B, -1:]], -1), limits[:B, :K]
