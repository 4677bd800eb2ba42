"""Checkpoints we write (safetensors weights + a JSON config, never pickle), their provenance, and
dataclass CLIs."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import time
from dataclasses import asdict, fields
from pathlib import Path

from traces.atomic import staged_dir
from traces.errors import UserError


class CheckpointError(UserError, ValueError):
    """A checkpoint folder that cannot be loaded as asked: the message names the folder (or file)."""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"  # the checkpoints that ship with the package


def code_version() -> str:
    """The short git commit of this checkout (``$MAMBA4NET_CODE_VERSION`` where the tree has no .git)."""
    if os.environ.get("MAMBA4NET_CODE_VERSION"):
        return os.environ["MAMBA4NET_CODE_VERSION"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance() -> dict:
    """What every artefact we write records about its making: the code version and the date."""
    return {"code_version": code_version(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_checkpoint(folder: str | Path, tensors: dict, kind: str, config, extra: dict,
                     weights: str = "model.safetensors") -> Path:
    """``folder/weights`` + ``folder/config.json`` (``{"model": kind, "config": asdict(config), **extra}``
    plus :func:`provenance` and the weights file's SHA-256), written to a temp folder and renamed into place."""
    from safetensors.torch import save_file

    with staged_dir(folder) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / weights))
        meta = {"model": kind, "config": asdict(config), **extra, **provenance(),
                "weights_sha256": file_sha256(tmp / weights)}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return Path(folder)


def read_meta(folder: str | Path, how_to_train: str = "") -> dict:
    """``folder/config.json`` as a dict with a ``config`` dict inside; every failure names the file."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        hint = f"; train one with `{how_to_train}`" if how_to_train else ""
        raise CheckpointError(f"{folder}: no checkpoint (config.json missing){hint}")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
        raise CheckpointError(f"{path}: expected an object with a 'config' object")
    return meta


def check_weights(folder: str | Path, meta: dict, weights: str) -> None:
    """The weights file must match the SHA-256 its config records (checkpoints written before the
    hash was recorded have none and are not checked)."""
    digest = meta.get("weights_sha256")
    if digest and file_sha256(Path(folder) / weights) != digest:
        raise CheckpointError(f"{Path(folder) / weights}: SHA-256 does not match the one in config.json "
                              "(the file was changed or corrupted)")


def check_finite(folder: str | Path, tensors: dict) -> None:
    import torch

    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{folder}: non-finite weights in {len(bad)} tensor(s), e.g. {bad[0]!r}")


def check_config_values(config, folder: str | Path) -> None:
    """Every field of a model config has its default's type; numbers are finite and positive (no model
    config of ours has a size, scale or count that may be zero); text is not empty."""
    import math

    for f in fields(config):
        value, default = getattr(config, f.name), f.default
        where = f"{folder}/config.json: config.{f.name} = {value!r}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise CheckpointError(f"{where}, expected true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (isinstance(default, int) and not isinstance(value, int)):
                raise CheckpointError(f"{where}, expected a {type(default).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise CheckpointError(f"{where}, expected a finite number above 0")
        elif isinstance(default, str) and not (isinstance(value, str) and value):
            raise CheckpointError(f"{where}, expected non-empty text")


def load_weights(model, tensors: dict, folder: str | Path, strict: bool = True) -> None:
    """``model.load_state_dict`` whose shape or key mismatch names the folder."""
    try:
        model.load_state_dict(tensors, strict=strict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise CheckpointError(f"{folder}: weights do not fit the model its config describes ({' '.join(first)})") \
            from None


def read_checkpoint(folder: str | Path, config_cls, how_to_train: str, weights: str = "model.safetensors",
                    kind: str | tuple[str, ...] | None = None, task: str | None = None):
    """``(tensors, config, meta)`` of a checkpoint folder, checked: its ``model`` is ``kind`` (one of them)
    and its ``task`` is ``task`` when given, the weights file matches its recorded SHA-256, every config
    value passes the config's own checks, every float tensor is finite. Unknown config keys are ignored;
    a missing checkpoint says how to make one; every error is a :class:`CheckpointError` naming the folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_meta(folder, how_to_train)
    if not (folder / weights).is_file():
        raise CheckpointError(f"{folder}: no {weights}; train one with `{how_to_train}`")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and meta.get("model") not in kinds:
        raise CheckpointError(f"{folder}: holds a {meta.get('model')!r} checkpoint, expected {' or '.join(kinds)}")
    if task is not None and meta.get("task", task) != task:
        raise CheckpointError(f"{folder}: a checkpoint for task {meta.get('task')!r}, expected {task!r}")
    check_weights(folder, meta, weights)
    known = {f.name for f in fields(config_cls)}
    try:
        config = config_cls(**{k: v for k, v in meta.get("config", {}).items() if k in known})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}/config.json: {exc}") from None
    check_config_values(config, folder)
    try:
        tensors = load_file(str(folder / weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{folder / weights}: not a readable safetensors file ({exc})") from None
    check_finite(folder, tensors)
    return tensors, config, meta


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_dataclass_args(cls, argv, prog: str, doc: str, fixed: dict | None = None):
    """CleanRL-style: one ``--flag`` per dataclass field, typed by its default; ``fixed`` fields are set by
    the entry point and have no flag."""
    fixed = fixed or {}
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(cls):
        if f.name in fixed:
            continue
        kind = type(f.default)
        if kind is bool:  # --flag true|false (argparse's bool("false") would be True)
            kind = _parse_bool
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return cls(**vars(parser.parse_args(argv)), **fixed)
