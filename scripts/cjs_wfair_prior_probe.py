"""Probe (session 10, not part of the package): a residual policy around wfair — a scheduler's logits plus
``scale`` on wfair's choice — with the shipped Decima GNN, before and after cloning a lookahead pool.

    MAMBA4NET_DATA=../shared/data PYTHONPATH=. python scripts/cjs_wfair_prior_probe.py sweep 2,4,6,8,16,100
    MAMBA4NET_DATA=../shared/data PYTHONPATH=. python scripts/cjs_wfair_prior_probe.py finetune POOL.json 8

Validation workloads 2000–2001 (100 jobs), project CPU, 2026-11-28 (docs/RESULTS.md): wfair 52.08 s; the
GNN + prior at scale 2 / 4 / 6 / 8 / 16 / 100: 52.78 / 51.99 / 52.54 / 51.89 / 52.08 / 52.08 s — noise
around wfair, no trend; cloned for one epoch on the no-wait lookahead pool of seeds 10000–10001: 52.09 s.
"""
import sys

import torch
from torch import nn

from agents.cjs import WeightedFair
from agents.cjs_gnn import _envs, imitate, load_checkpoint, mean_jct


def wfair_prior(obs: dict[str, torch.Tensor], exponent: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """:class:`agents.cjs.WeightedFair` on a padded batch of observation tensors: its stage slot per row
    (B,) (``K·S`` = wait) and, per job, the limit index it would give that job (B, K)."""
    jf, sm = obs["job_features"].float(), obs["stage_mask"]
    B, K, S = obs["node_features"].shape[:3]
    E = obs["limit_mask"].shape[-1]
    present = jf[..., 0] > 0
    ex, idle = torch.round(jf[..., 1] * E), torch.round(jf[..., 5] * E)
    w = torch.where(present, jf[..., 4].clamp_min(1e-3) ** exponent, torch.zeros_like(jf[..., 0]))
    share = torch.ceil(E * w / w.sum(-1, keepdim=True).clamp_min(1e-12)).clamp_min(1)
    stages = sm[:, : K * S].reshape(B, K, S) > 0
    eligible = present & stages.any(-1) & ((ex < share) | (idle > 0))
    key = torch.where(eligible, jf[..., 4], torch.full_like(jf[..., 4], float("inf")))
    k = key.argmin(-1)  # the first minimum: the oldest of equals, as np.argmin
    rows = torch.arange(B, device=jf.device)
    stage = stages[rows, k].int().argmax(-1)
    slot = torch.where(eligible.any(-1), k * S + stage, torch.full_like(k, K * S))
    limit = (torch.maximum(share, ex + 1).clamp_max(E) - 1).long()
    return slot, limit


class WFairPrior(nn.Module):
    """A scheduler's logits plus ``scale`` on wfair's choice (its stage slot, and each job's wfair limit):
    a residual policy around the heuristic — at a large scale it is wfair, and training teaches the
    model where to deviate from it."""

    def __init__(self, model: nn.Module, scale: float = 4.0):
        super().__init__()
        self.model, self.scale = model, float(scale)

    def forward(self, obs):
        logits, limits = self.model(obs)
        slot, limit = wfair_prior(obs)
        bonus = torch.zeros_like(logits).scatter_(1, slot[:, None], self.scale)
        lbonus = torch.zeros_like(limits).scatter_(2, limit[..., None], self.scale)
        return logits + bonus, limits + lbonus


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gnn, _ = load_checkpoint("agents/pretrained/cjs_gnn")
    val = dict(val_seeds=[2000, 2001], val_jobs=100)
    if sys.argv[1] == "sweep":
        for scale in (float(x) for x in sys.argv[2].split(",")):
            print(f"scale {scale}: validation mean JCT {mean_jct(WFairPrior(gnn, scale), _envs(100, 2), val['val_seeds']):.2f} s")
    else:  # finetune POOL SCALE
        from agents.cjs_lookahead import replay_pool

        model = WFairPrior(gnn, float(sys.argv[3]))
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        best = imitate(model, opt, pool_expert=None, labeler=WeightedFair(), jobs=50, bc_episodes=0, bc_epochs=1,
                       rounds=0, episodes=0, epochs=0, beta=0.5, pool_trajs=replay_pool(sys.argv[2]), **val)
        print(f"after cloning the pool: validation mean JCT {best:.2f} s")


if __name__ == "__main__":
    main()
