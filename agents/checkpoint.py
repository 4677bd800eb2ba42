"""Checkpoints we write (safetensors weights + a JSON config, never pickle) and dataclass CLIs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from pathlib import Path

from traces.atomic import staged_dir


def write_checkpoint(folder: str | Path, tensors: dict, kind: str, config, extra: dict,
                     weights: str = "model.safetensors") -> Path:
    """``folder/weights`` + ``folder/config.json`` (``{"model": kind, "config": asdict(config), **extra}``),
    written to a temp folder and renamed into place."""
    from safetensors.torch import save_file

    with staged_dir(folder) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / weights))
        (tmp / "config.json").write_text(json.dumps({"model": kind, "config": asdict(config), **extra},
                                                    indent=2, default=float) + "\n")
    return Path(folder)


def read_checkpoint(folder: str | Path, config_cls, how_to_train: str, weights: str = "model.safetensors"):
    """``(tensors, config, meta)``; unknown config keys are ignored, a missing file says how to make one."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / weights).is_file():
        raise FileNotFoundError(f"{folder}: no checkpoint ({weights} + config.json); train one with `{how_to_train}`")
    meta = json.loads((folder / "config.json").read_text())
    known = {f.name for f in fields(config_cls)}
    config = config_cls(**{k: v for k, v in meta["config"].items() if k in known})
    return load_file(str(folder / weights)), config, meta


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_dataclass_args(cls, argv, prog: str, doc: str):
    """CleanRL-style: one ``--flag`` per dataclass field, typed by its default."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(cls):
        kind = type(f.default)
        if kind is bool:  # --flag true|false (argparse's bool("false") would be True)
            kind = _parse_bool
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return cls(**vars(parser.parse_args(argv)))
