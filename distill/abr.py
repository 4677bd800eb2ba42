"""``python -m distill.abr pool | ppo | teacher | student``: everything learned for adaptive bitrate streaming."""

from __future__ import annotations

from traces.errors import run_cli

from . import dispatch

COMMANDS = {
    "pool": ("distill.abr_pool", "record (or merge) experience pools of any ABR agents", {}),
    "ppo": ("distill.rl", "the Pensieve baseline with SB3 PPO / A2C (or PPO fine-tuning of the student)", {"env": "abr"}),
    "teacher": ("distill.abr_teacher", "adapt the LLM teacher (LoRA) on a pool, optional DAgger rounds", {}),
    "student": ("distill.abr_student", "distil the Mamba student from a teacher (CWR, DKO, DAgger)", {}),
}


def main(argv=None) -> None:
    dispatch("abr", COMMANDS, argv)


if __name__ == "__main__":
    run_cli(main)
