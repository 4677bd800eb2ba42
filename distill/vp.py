"""``python -m distill.vp track | teacher | student``: everything learned for viewport prediction."""

from __future__ import annotations

from traces.errors import run_cli

from . import dispatch

COMMANDS = {
    "track": ("distill.vp_track", "the TRACK-style LSTM baseline", {}),
    "teacher": ("distill.vp_llm", "adapt the LLM teacher (LoRA)", {"role": "teacher"}),
    "student": ("distill.vp_llm", "distil the Mamba student from a teacher (CWR, DKO)", {"role": "student"}),
}


def main(argv=None) -> None:
    dispatch("vp", COMMANDS, argv)


if __name__ == "__main__":
    run_cli(main)
