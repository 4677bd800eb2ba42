"""``python -m distill.cjs pool | gnn | lookahead | ppo | teacher | student``: everything learned for cluster job
scheduling."""

from __future__ import annotations

from traces.errors import run_cli

from . import dispatch

COMMANDS = {
    "pool": ("distill.cjs_pool", "record pools: any agent's workloads, optionally labelled by another", {}),
    "gnn": ("distill.cjs_imitation", "the Decima-style GNN: imitation, DAgger, REINFORCE", {}),
    "lookahead": ("distill.cjs_lookahead", "DAgger of the GNN toward a rollout expert over it", {}),
    "ppo": ("distill.rl", "an SB3 PPO scheduler over the flattened env", {"env": "cjs"}),
    "teacher": ("distill.cjs_llm", "adapt the LLM teacher (LoRA) by imitation and DAgger", {"role": "teacher"}),
    "student": ("distill.cjs_llm", "distil the Mamba student from a teacher (DKO, DAgger)", {"role": "student"}),
}


def main(argv=None) -> None:
    dispatch("cjs", COMMANDS, argv)


if __name__ == "__main__":
    run_cli(main)
