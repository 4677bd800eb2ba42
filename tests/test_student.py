"""The Mamba4Net student: recurrent step == full forward, per-row resets, CWR mapping, DKO + DAgger
training with resume, fresh-process round trip, and the benchmark harness at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.hybrid import ssd_scan
from agents.student import ABRStudent, StudentConfig, StudentPolicy
from agents.teacher import ABRTeacher, TeacherConfig
from distill.abr_pool import collect_abr, save_pool
from distill.abr_student import StudentDistillation as Args, dko_loss, episodes_from_flat, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(d_model=32, headdim=16, d_state=16, attn_heads=2)


def _episode(B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, generator=g, dtype=torch.float64), torch.rand(B, T, 6, 6, generator=g, dtype=torch.float64),
            torch.randint(0, 7, (B, T), generator=g), torch.arange(T).repeat(B, 1))


@pytest.mark.parametrize("layers,T,chunk,max_len,groups", [("mmam", 47, 16, 64, 1), ("mamma", 30, 64, 8, 2),
                                                           ("mmmmmmmmmmaa", 47, 64, 64, 1),
                                                           ("mam", 150, 64, 64, 1)])  # > ONE_CHUNK_MAX: chunked
def test_recurrent_step_equals_full_forward(layers, T, chunk, max_len, groups):
    torch.manual_seed(0)
    model = ABRStudent(StudentConfig(layers=layers, chunk=chunk, max_len=max_len, ngroups=groups, **TINY)).double().eval()
    r, s, a, t = _episode(3, T)
    full = model(r, s, a, t)
    state = model.init_state(3, dtype=torch.float64)
    steps = [model.step(r[:, i], s[:, i], a[:, i], t[:, i], state, torch.full((3,), float(i > 0), dtype=torch.float64))
             for i in range(T)]
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=0, atol=1e-10)


def test_chunked_scan_equals_sequential_recurrence():
    torch.manual_seed(1)
    b, T, H, P, N = 2, 37, 3, 4, 5
    x, B, C = torch.randn(b, T, H, P).double(), torch.randn(b, T, H, N).double(), torch.randn(b, T, H, N).double()
    dt, A = torch.rand(b, T, H).double(), -torch.rand(H).double() * 4
    y, final = ssd_scan(x, dt, A, B, C, chunk=8)
    S = torch.zeros(b, H, P, N, dtype=torch.float64)
    for i in range(T):
        S = S * torch.exp(dt[:, i] * A)[..., None, None] + (dt[:, i, :, None] * x[:, i])[..., None] * B[:, i, :, None, :]
        torch.testing.assert_close(y[:, i], torch.einsum("bhpn,bhn->bhp", S, C[:, i]), rtol=0, atol=1e-10)
    torch.testing.assert_close(final, S, rtol=0, atol=1e-10)
    # without a state to return, a short sequence is one chunk: the same outputs
    y1, none = ssd_scan(x, dt, A, B, C, chunk=8, final_state=False)
    assert none is None
    torch.testing.assert_close(y1, y, rtol=0, atol=1e-10)


def test_rows_reset_independently():
    """Rows at different points of their episodes (vector-env autoreset) match single-row runs."""
    torch.manual_seed(2)
    model = ABRStudent(StudentConfig(layers="mam", max_len=8, **TINY)).double().eval()
    r, s, a, t = _episode(1, 20, seed=3)
    ref = model(r[:, 5:], s[:, 5:], a[:, 5:], t[:, 5:] - 5)[0]  # an episode starting at step 5
    state = model.init_state(2, dtype=torch.float64)
    outs = []
    for i in range(20):
        keep = torch.tensor([float(i > 0), float(i != 5)], dtype=torch.float64)  # row 1 restarts at step 5
        rows = [torch.cat([x[:, i], x[:, i]]) for x in (r, s, a)]
        tt = torch.tensor([i, max(i - 5, i if i < 5 else i - 5)])
        outs.append(model.step(*rows, tt, state, keep)[1])
    torch.testing.assert_close(torch.stack(outs[5:]), ref, rtol=0, atol=1e-10)


def test_cwr_preserves_attention_scores():
    """With the student as wide as the teacher, P is a rotation: the mapped Mamba block's C·B equals the
    teacher's q·k (head 0) and the attention block's scores equal the teacher's, on the same inputs."""
    from distill.cwr import cwr_init

    torch.manual_seed(0)
    teacher = ABRTeacher(TeacherConfig(backbone="tiny-random", lora_rank=4, window=4))
    for p in teacher.backbone.parameters():  # non-trivial LoRA deltas and norm gains
        if p.dim() == 2 and p.shape[0] == 4 or p.dim() == 1:
            torch.nn.init.normal_(p, 1.0 if p.dim() == 1 else 0.0, 0.3)
    student = ABRStudent(StudentConfig(layers="ma", d_model=64, headdim=16, d_state=16, attn_heads=4))
    report = cwr_init(student, teacher)
    assert report["layer_map"] == [0, 1]
    base = teacher.backbone.get_base_model()
    from distill.cwr import _attention_weights, _weight, residual_basis

    x = torch.randn(5, 64)  # teacher residual vectors
    with torch.no_grad():
        P, energy = residual_basis(_attention_weights(base, [0, 1]), 64)
        assert energy == pytest.approx(1.0)
        torch.testing.assert_close(student.embed_action.weight, teacher.embed_action.weight @ P.T)
        xs = x @ P.T
        for li, mixer in enumerate(student.backbone.mixers):
            layer = base.layers[li]
            xn = layer.input_layernorm(x)  # the teacher's attention input
            xsn = student.backbone.norms[li](xs)  # the student's (gain 1)
            q, k = xn @ _weight(layer.self_attn.q_proj).T, xn @ _weight(layer.self_attn.k_proj).T
            # RMS norms agree up to the scale sqrt(D / d_s) = 1 here
            if mixer.kind == "m":
                proj = xsn @ mixer.in_proj.weight.T
                di, N = mixer.di, mixer.N
                Bm, Cm = proj[:, 2 * di:2 * di + N], proj[:, 2 * di + N:2 * di + 2 * N]
                torch.testing.assert_close(Cm @ Bm.T, q[:, :16] @ k[:, :16].T, rtol=1e-4, atol=1e-4)
            else:
                qs, ks = mixer.q_proj(xsn), mixer.k_proj(xsn)
                torch.testing.assert_close(qs[:, :16] @ ks[:, :16].T, q[:, :16] @ k[:, :16].T, rtol=1e-4, atol=1e-4)


def test_dko_loss_terms():
    logits = torch.tensor([[[2.0, 0.0, 0.0]]])
    target = torch.tensor([[0]])
    mask = torch.tensor([[True]])
    loss, ce, kl = dko_loss(logits, target, logits.clone(), mask, beta=0.5, temperature=2.0)
    assert float(kl) == pytest.approx(0.0, abs=1e-7) and float(loss) == pytest.approx(float(ce))
    other = torch.tensor([[[0.0, 2.0, 0.0]]])
    loss2, ce2, kl2 = dko_loss(logits, target, other, mask, beta=0.5, temperature=2.0)
    assert float(kl2) > 0 and float(loss2) == pytest.approx(float(ce2) + 0.5 * 4 * float(kl2))


def test_episodes_from_flat_shapes_and_previous_actions():
    flat = {"episode": np.array([0, 0, 0, 1, 1]), "obs": np.zeros((5, 6, 6), np.float32),
            "action": np.array([1, 2, 3, 4, 5]), "return_to_go": np.arange(5.0), "timestep": np.array([0, 1, 2, 0, 1])}
    eps = episodes_from_flat(flat, 6, flat["action"], None)
    assert eps["mask"].tolist() == [[True, True, True], [True, True, False]]
    assert eps["prev"].tolist() == [[6, 1, 2], [6, 4, 6]]
    assert eps["target"].tolist() == [[1, 2, 3], [4, 5, -100]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_root):
    folder = tmp_path_factory.mktemp("traces")
    for p in sorted((data_root / "abr/traces/fcc-test").iterdir())[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    arrays, meta = collect_abr(["robustmpc"], str(folder), progress=False)
    pool = tmp_path_factory.mktemp("pool") / "p"
    save_pool(pool, arrays, meta)
    torch.manual_seed(0)
    teacher = ABRTeacher(TeacherConfig(backbone="tiny-random", lora_rank=4, window=4, condition="none")).eval()
    return pool, folder, teacher


def _args(setup, out, **kw):
    pool, folder, _ = setup
    base = dict(pool=str(pool), teacher="", layers="mma", d_model=32, d_state=16, headdim=16, steps=20, batch_size=4,
                dagger_rounds=1, dagger_traces=str(folder), device="cpu", eval_traces="", save_every=1000, out=str(out))
    return Args(**{**base, **kw})


def test_distill_with_dagger_resumes_exactly(tmp_path, setup):
    teacher = setup[2]
    full, metrics = train(_args(setup, tmp_path / "a", init="cwr"), teacher=teacher, log=lambda *_: None)
    assert len(metrics["dagger"]) == 1 and metrics["cwr"]["layer_map"] == [0, 0, 1]
    import distill.abr_student as S

    args = _args(setup, tmp_path / "b", init="cwr", save_every=15)
    real, calls = S._save_state, []

    def save_then_stop(folder, model, opt, step, rng, arrays=None, **kw):
        real(folder, model, opt, step, rng, arrays, **kw)
        calls.append(step)
        if step == 15:
            raise KeyboardInterrupt

    S._save_state = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(args, teacher=teacher, log=lambda *_: None)
    finally:
        S._save_state = real
    assert calls == [10, 15]  # the DAgger round (phase end at step 10), then the periodic save
    resumed, m2 = train(args, teacher=teacher, log=lambda *_: None)
    assert m2["dagger"] == metrics["dagger"]  # the DAgger log survives the interruption
    for (k, v), (_, v2) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(v, v2, rtol=1e-4, atol=1e-5, msg=k)


def test_no_teacher_ablation_and_fresh_process_round_trip(tmp_path, setup):
    out = tmp_path / "student"
    _, metrics = train(_args(setup, out, init="random", condition="return"), log=lambda *_: None)
    assert metrics["dagger"] == [] and metrics["target_return"] > 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "mamba4net-student" and cfg["config"]["layers"] == "mma"
    script = (
        "import sys, json, torch; sys.path.insert(0, '.');"
        "from agents.student import load_student, StudentPolicy;"
        "from envs.abr import ABREnv; from traces import load_abr_traces, load_abr_video;"
        f"m, meta = load_student('{out}');"
        "pol = StudentPolicy(m, meta['target_return']);"
        "env = ABREnv(load_abr_traces('fcc-test'), load_abr_video('video1'), mode='test');"
        "obs, info = env.reset(options={'trace_index': 2}); acts = []; term = False\n"
        "while not term:\n a = pol.act(obs, info); acts.append(int(a)); obs, r, term, _, info = env.step(a)\n"
        "print(json.dumps(acts))"
    )
    runs = [subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    a, b = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert a == b and len(a) == 47
    # the same actions in this process, batched with another session (policy rows are independent)
    from agents.student import load_student
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    m, meta = load_student(out)
    rec = evaluate_abr(StudentPolicy(m, meta["target_return"]), load_abr_traces("fcc-test"), load_abr_video("video1"),
                       keep_obs=True).records
    assert rec["action"][2].tolist() == a


def test_bench_harness_cpu(tmp_path):
    from evaluation.bench import main

    main(["--device", "cpu", "--dtype", "fp32", "--tiny", "--teachers", "tiny", "--batch-sizes", "1,2",
          "--horizons", "4", "--tasks", "abr,vp,cjs", "--cjs-jobs", "3", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "bench.json").read_text())
    assert set(res["models"]) == {"student", "teacher-tiny"}
    runs = res["models"]["teacher-tiny"]["runs"]
    assert {"window-b1-eager", "kv-b2-h4"} <= set(runs)
    assert all(r["decisions_per_s"] > 0 and r["latency_ms_p99"] >= r["latency_ms_median"] * 0.5 for r in runs.values())
    assert 0 < res["ratios"]["teacher-tiny"]["storage_fraction"] < 1
    assert {p.name for p in tmp_path.glob("*.png")} == {"throughput_vs_batch.png", "latency_vs_horizon.png", "storage.png"}
    vp = res["vp"]
    assert {"b1-eager", "b2-eager"} == set(vp["student"]["runs"]) == set(vp["teacher-tiny"]["runs"])
    assert vp["ratios"]["throughput_x_b2"] > 0 and 0 < vp["ratios"]["storage_fraction"] < 1
    cjs = res["cjs"]
    assert {"b1-eager", "b2-eager"} == set(cjs["student"]["runs"]) == set(cjs["teacher-tiny"]["runs"]) == set(cjs["gnn"]["runs"])
    assert all(r["decisions_per_s"] > 0 and r["jobs"] == 3 for r in cjs["student"]["runs"].values())
    assert cjs["ratios"]["throughput_x_b1"] > 0 and 0 < cjs["ratios"]["storage_fraction"]
    with pytest.raises(SystemExit, match="use abr, vp, cjs"):
        main(["--device", "cpu", "--tiny", "--tasks", "dash", "--out", str(tmp_path / "x")])


def test_shipped_student_scores_its_recorded_qoe(data_root):
    """The shipped student's quality is pinned: its mean QoE on the first 8 traces of fcc-test and of oboe
    (test mode, deterministic simulator) equals the value recorded in its checkpoint, to 1e-6."""
    from agents import agent_spec, make_agent
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    meta = json.loads((agent_spec("abr", "student").folder / "config.json").read_text())
    video = load_abr_video("video1")
    for name, path in (("fcc-test", "fcc-test"), ("oboe", str(data_root / "abr/traces/oboe"))):
        pinned = meta["pinned_qoe"][name]
        traces = load_abr_traces(path).subset(np.arange(len(pinned["traces"])))
        assert traces.names == pinned["traces"]
        qoe = evaluate_abr(make_agent("abr", "student", video=video), traces, video).summary()["qoe"]
        assert qoe == pytest.approx(pinned["qoe"], abs=1e-6), name


def test_shipped_student_was_distilled_from_the_shipped_teacher():
    """The ABR pair ships together: the student's checkpoint names the SHA-256 of the teacher adapter it was
    distilled from, and that is the adapter the teacher ships."""
    from agents import agent_spec
    from agents.checkpoint import file_sha256

    meta = json.loads((agent_spec("abr", "student").folder / "config.json").read_text())
    teacher = agent_spec("abr", "teacher").folder / "adapter.safetensors"
    assert meta["teacher_adapter_sha256"] == file_sha256(teacher)


def test_a_distilled_student_records_its_teachers_adapter(tmp_path, setup):
    """The pair is explicit: the student's checkpoint records the SHA-256 of the teacher adapter file it was
    distilled from (``teacher_adapter_sha256``)."""
    from agents.checkpoint import file_sha256
    from agents.teacher import save_teacher

    save_teacher(setup[2], tmp_path / "t", {"target_return": 0.0})
    train(_args(setup, tmp_path / "s", teacher=str(tmp_path / "t"), init="random", dagger_rounds=0, steps=3),
          log=lambda *_: None)
    meta = json.loads((tmp_path / "s" / "config.json").read_text())
    assert meta["teacher_adapter_sha256"] == file_sha256(tmp_path / "t" / "adapter.safetensors")
