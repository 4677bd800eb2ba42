"""Probe (session 11): where does a learned CJS scheduler lose to wfair — its waits, its limits?

The shipped student waits at 30–54% of the decisions where wfair (and the no-wait lookahead expert)
would send a free executor to a job. This scores a checkpoint as it is (``plain``), "work-conserving"
(``conserving``: the wait slot masked whenever some stage is schedulable; wait stays possible when
nothing is) and with wfair's limit (``share``: the scheduler picks the stage, the limit is wfair's
share of that job, as :class:`agents.cjs.WeightedFair` sets it). Session 12 added ``job``: the scheduler
decides only *when* to act — wherever it sends an executor, wfair's choice (job, stage, limit) is sent
instead; its waits stay its own (:class:`agents.cjs.TimedWfair`, shipped as the ``student-wfair`` agent).
Session 13 added ``slot``: the same with the scheduler's own limit for wfair's job (``student-wfair-slot``).

    MAMBA4NET_DATA=../shared/data PYTHONPATH=. python scripts/cjs_wait_probe.py agents/pretrained/student_cjs_v1 \
        --seeds 2000,2001 --jobs 100 --mode both
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


class WorkConserving:
    """A batch policy whose wait slot is masked when any stage is schedulable."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name + "+work-conserving"

    def reset(self, seed=None):
        self.inner.reset(seed)

    def _mask(self, obs):
        m = np.asarray(obs["stage_mask"])
        if m[:-1].any() and m[-1]:
            m = m.copy()
            m[-1] = 0
            obs = {**obs, "stage_mask": m}
        return obs

    def act(self, obs, info=None):
        return self.inner.act(self._mask(obs), info)

    def act_list(self, obs_list, infos=None):
        return self.inner.act_list([self._mask(o) for o in obs_list], infos)


class ShareLimit:
    """A batch policy whose chosen job gets wfair's share as its limit."""

    def __init__(self, inner):
        from agents.cjs import WeightedFair

        self.inner, self.rule, self.name = inner, WeightedFair(), inner.name + "+share-limit"

    def reset(self, seed=None):
        self.inner.reset(seed)

    def _limit(self, obs, a):
        S, E = np.asarray(obs["node_features"]).shape[1], np.asarray(obs["limit_mask"]).shape[-1]
        present, _, _, share, executors = self.rule.observed(obs)
        i = np.flatnonzero(present == int(a[0]) // S)
        if len(i) == 0:
            return a  # wait
        return np.asarray([a[0], min(max(int(share[i[0]]), executors[i[0]] + 1), E) - 1])

    def act(self, obs, info=None):
        return self._limit(obs, self.inner.act(obs, info))

    def act_list(self, obs_list, infos=None):
        return [self._limit(o, a) for o, a in zip(obs_list, self.inner.act_list(obs_list, infos))]


def main() -> None:
    from agents.cjs import TimedWfair
    from agents.cjs_gnn import GNNScheduler, _envs, lockstep
    from agents.cjs_llm import for_inference, load_cjs

    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--seeds", default="2000,2001")
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--mode", default="both",
                   help="plain | conserving | share | job | slot | both (plain and conserving)")
    p.add_argument("--out", default="")
    args = p.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    model, _ = load_cjs(args.checkpoint, device="cpu")
    base = GNNScheduler(model=for_inference(model), device="cpu", name="model")
    out = {}
    for mode in (["plain", "conserving"] if args.mode == "both" else [args.mode]):
        pol = {"plain": base, "conserving": WorkConserving(base), "share": ShareLimit(base),
               "job": TimedWfair(base), "slot": TimedWfair(base, limit="own")}[mode]
        t0 = time.perf_counter()
        trajs = lockstep(_envs(args.jobs, len(seeds)), seeds, pol, record=False)
        jct = [t["mean_jct_s"] for t in trajs]
        out[mode] = {"per_seed": jct, "mean": float(np.mean(jct)),
                     "decisions": [t["decisions"] for t in trajs], "seconds": time.perf_counter() - t0}
        print(mode, json.dumps(out[mode]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "seeds": seeds, "jobs": args.jobs, **out}, f, indent=1)


if __name__ == "__main__":
    main()
