"""VP teacher (tiny LLM) and Mamba student: train, CWR, distil, save/load, evaluate through the Policy."""

from __future__ import annotations

import json

import numpy as np
import torch

from agents.vp_llm import VPModelPolicy, VPStudent, VPStudentConfig, load_vp, predict_degrees


def test_vp_teacher_then_student(tmp_path, data_root):
    from distill.vp import main as vp_main
    from evaluation.vp import evaluate_vp
    from traces.viewport import load_jin2022_split, make_windows

    common = ["--epochs", "2", "--limit", "128", "--device", "cpu", "--batch-size", "32"]
    vp_main(["teacher", "--backbone", "tiny-random", "--lora-rank", "4", "--out", str(tmp_path / "t"), *common])
    cfg = json.loads((tmp_path / "t/config.json").read_text())
    assert cfg["model"] == "vp-teacher" and cfg["metrics"]["epochs_run"] == 2
    vp_main(["student", "--teacher", str(tmp_path / "t"), "--init", "cwr", "--layers", "mma", "--d-model", "32",
                  "--d-state", "16", "--headdim", "16", "--out", str(tmp_path / "s"), *common])
    s_cfg = json.loads((tmp_path / "s/config.json").read_text())
    assert s_cfg["model"] == "vp-student" and s_cfg["metrics"]["cwr"]["layer_map"] == [0, 0, 1]
    model, _ = load_vp(tmp_path / "s")
    w = make_windows(load_jin2022_split("test"))
    w_small = type(w)(*(getattr(w, f)[:64] for f in ("history", "future", "history_t", "video", "user", "index")))
    run = evaluate_vp(VPModelPolicy(model, "student"), w_small)
    pred = predict_degrees(model, w_small.history)
    assert pred.shape == (64, 20, 3) and np.all(np.abs(pred[..., 2]) <= 180)
    assert np.isfinite(run.summary()["mae"])


def test_vp_student_is_causal_over_history():
    """The history feeds the predictions (a change in the oldest sample moves them)."""
    torch.manual_seed(0)
    m = VPStudent(VPStudentConfig(layers="mam", d_model=32, d_state=16, headdim=16, attn_heads=2)).eval()
    h = torch.randn(2, 10, 3) * 10
    out = m(h)
    h2 = h.clone()
    h2[:, 0] += 5.0
    assert out.shape == (2, 20, 3) and not torch.allclose(m(h2), out)
