"""Experience pools, teacher adaptation and student distillation (torch lives here)."""

from __future__ import annotations

import importlib
import sys

# ``python -m distill.teacher|student --env NAME ...`` hands these tasks to their own trainer module
ENV_TRAINERS = {"vp": "distill.vp", "cjs": "distill.cjs"}


def forward_env(role: str, argv: list[str] | None) -> bool:
    """If ``argv`` names an ``--env`` with its own trainer (:data:`ENV_TRAINERS`), run that trainer's
    ``main(["--role", role, ...])`` without the ``--env`` flag and return True; else return False."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv):
        env = argv[i + 1] if a == "--env" and i + 1 < len(argv) else a.removeprefix("--env=") if a.startswith("--env=") else None
        if env in ENV_TRAINERS:
            rest = argv[:i] + argv[i + (1 if "=" in a else 2):]
            importlib.import_module(ENV_TRAINERS[env]).main(["--role", role, *rest])
            return True
    return False
