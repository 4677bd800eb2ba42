"""All learning: experience pools, RL baselines, imitation / DAgger / REINFORCE, teacher adaptation and
student distillation. One entry point per task, one subcommand per thing it trains::

    python -m distill.abr  pool | ppo | teacher | student  [--help]
    python -m distill.vp   track | teacher | student       [--help]
    python -m distill.cjs  pool | gnn | lookahead | ppo | teacher | student  [--help]
"""

from __future__ import annotations

import importlib
import sys


def dispatch(task: str, commands: dict[str, tuple[str, str, dict]], argv: list[str] | None = None) -> None:
    """``python -m distill.<task> COMMAND [ARGS...]``: run ``commands[COMMAND]`` = (module, what it
    trains, keyword arguments for the module's ``main``) on the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: python -m distill.{task} {{{','.join(commands)}}} [ARGS...]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage + "\n\n" + "\n".join(f"  {name:<8} {what}" for name, (_, what, _) in commands.items()))
        return
    if argv[0] not in commands:
        print(f"{usage}\npython -m distill.{task}: error: unknown command {argv[0]!r}", file=sys.stderr)
        raise SystemExit(2)
    module, _, kwargs = commands[argv[0]]
    importlib.import_module(module).main(argv[1:], **kwargs)


def run_trainer(config_cls, train, argv, prog: str, doc: str) -> None:
    """A trainer's command line: parse ``config_cls`` from ``argv``, ``train`` it, write ``OUT/metrics.json`` and
    print the metrics (a non-zero torchrun rank gets none and writes nothing)."""
    import json
    from pathlib import Path

    from agents.checkpoint import parse_dataclass_args
    from traces.atomic import write_text_atomic

    args = parse_dataclass_args(config_cls, argv, prog, doc)
    _, metrics = train(args)
    if not metrics:
        return
    write_text_atomic(Path(args.out) / "metrics.json", json.dumps(metrics, indent=2, default=float))
    print(json.dumps(metrics, indent=2, default=float))


class EarlyStopping:
    """Early stopping on a validation error (lower is better): ``update(error, state)`` keeps a copy of
    ``state()`` (a dict of tensors) whenever the error improves by more than ``min_delta`` and says whether
    ``patience`` epochs in a row went without improvement."""

    def __init__(self, patience: int, min_delta: float = 1e-4):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.state, self.bad = float("inf"), None, 0

    def update(self, error: float, state) -> bool:
        if error < self.best - self.min_delta:
            self.best, self.bad = error, 0
            self.state = {k: v.detach().clone() for k, v in state().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience
