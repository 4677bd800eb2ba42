"""CJS teacher / student schedulers and their trainer: padding invariance, batched = single decisions,
batched rollouts = serial evaluation, the bucketed decision set, a tiny teacher -> student run and round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.cjs_gnn import DecimaGNN, GNNConfig, ModelScheduler, pad_stack, to_tensors, trim
from agents.cjs_llm import CJSStudent, CJSStudentConfig, CJSTeacher, CJSTeacherConfig, load_cjs
from envs.cjs import CJSConfig, CJSEnv
from distill.cjs_imitation import DecisionSet, _stack, action_logp
from evaluation.cjs import evaluate_cjs
from evaluation.rollout import batched_rollout

TINY_T = CJSTeacherConfig(backbone="tiny-random", lora_rank=4, hidden=8, rounds=2)
TINY_S = CJSStudentConfig(layers="mma", d_model=32, d_state=16, headdim=16, attn_heads=2, hidden=8, rounds=2)


def _states(n_jobs=12, seed=3, every=40, steps=400):
    """Trimmed observations of a wfair episode, with different numbers of jobs in the system."""
    env = CJSEnv(CJSConfig(num_jobs=n_jobs))
    wf = make_agent("cjs", "wfair")
    obs, info = env.reset(seed=seed)
    out, full, acts = [], [], []
    for i in range(steps):
        a = wf.act(obs, info)
        if i % every == 0:
            small, slot = trim(obs, np.asarray([a[0]]))
            out.append(small)
            full.append(obs)
            acts.append([int(slot[0]), int(a[1])])
        obs, _, term, _, info = env.step(a)
        if term:
            break
    return out, full, np.asarray(acts)


def test_rows_do_not_depend_on_their_batch(data_root):
    torch.manual_seed(0)
    states, _, _ = _states()
    widths = [s["job_features"].shape[0] for s in states]
    assert len(set(widths)) > 1  # the batch really pads some rows
    arrays, w = pad_stack(states)
    S = arrays["node_features"].shape[2]
    for model in (CJSTeacher(TINY_T), CJSStudent(TINY_S), DecimaGNN(GNNConfig(hidden=8, rounds=2))):
        model.eval()
        with torch.no_grad():
            logits, limits = model(to_tensors(arrays))
            for i, s in enumerate(states):
                one, lim_one = model(to_tensors(s))
                K = w[i]
                batched = torch.cat([logits[i, :K * S], logits[i, -1:]])
                torch.testing.assert_close(batched, one[0], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(limits[i, :K], lim_one[0], atol=1e-5, rtol=1e-5)


def test_batched_decisions_equal_single_ones(data_root):
    torch.manual_seed(1)
    _, full, _ = _states()
    pol = ModelScheduler(model=CJSStudent(TINY_S))
    together = pol.act_list(full)
    alone = [pol.act(o) for o in full]
    assert all(np.array_equal(a, b) for a, b in zip(together, alone))
    for o, a in zip(full, together):  # valid actions in the env's layout
        assert a[0] == len(o["stage_mask"]) - 1 or o["stage_mask"][a[0]] == 1


def test_batched_rollout_equals_serial_evaluation(data_root):
    torch.manual_seed(2)
    cfg = CJSConfig(num_jobs=2)
    pol = ModelScheduler(model=DecimaGNN(GNNConfig(hidden=8, rounds=2)))
    side_by_side = evaluate_cjs(pol, seeds=[7, 8], config=cfg)  # batched scheduler: side by side
    serial = [evaluate_cjs(pol, seeds=[s], config=cfg, env=CJSEnv(cfg)) for s in (7, 8)]  # env given: serial
    for i in range(2):
        np.testing.assert_allclose(side_by_side.jct_s[i], serial[i].jct_s[0])
        assert side_by_side.decisions[i] == serial[i].decisions[0]


def test_batched_rollout_dagger_labels_and_cut(data_root):
    envs = [CJSEnv(CJSConfig(num_jobs=3)) for _ in range(2)]
    wf = make_agent("cjs", "wfair")
    fifo = make_agent("cjs", "fifo")
    trajs = batched_rollout(envs, [1, 2], fifo, expert=wf, follow=0.0)
    for t in trajs:  # labels are wfair's, on the states FIFO visited
        assert len(t["obs"]) == len(t["acts"]) == t["decisions"] and not t["truncated"]
    cut = batched_rollout(envs, [1, 2], fifo, record=False, max_decisions=5)
    assert all(t["truncated"] and t["decisions"] == 5 for t in cut)


def test_decision_set_keeps_every_decision(data_root):
    states, _, acts = _states()
    data = DecisionSet(step=4)
    data.add(states, acts)
    assert len(data) == len(states)
    model = DecimaGNN(GNNConfig(hidden=8, rounds=2)).eval()
    with torch.no_grad():
        o, sl, li = _stack(states, acts)
        want = sorted(action_logp(model, o, sl, li)[0].tolist())
        got = sorted(x for o, sl, li in data.batches(3, np.random.default_rng(0))
                     for x in action_logp(model, o, sl, li)[0].tolist())
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_tiny_teacher_student_round_trip(tmp_path, data_root):
    from distill.cjs_llm import CJSDistillation as Args, evaluate_only, train

    common = dict(hidden=8, jobs=2, bc_episodes=1, bc_epochs=1, dagger_rounds=1, dagger_episodes=1, dagger_epochs=1,
                  val_seeds=1, val_jobs=2, eval_seeds=0, batch_size=64, device="cpu", decision_cap=40, task_init="")
    t_args = Args(role="teacher", backbone="tiny-random", lora_rank=4, out=str(tmp_path / "t"), **common)
    teacher, t_metrics = train(t_args, log=lambda *_: None)
    assert [h["stage"] for h in t_metrics["history"]] == ["bc", "dagger"]
    s_args = Args(role="student", teacher=str(tmp_path / "t"), init="cwr", layers="mma", d_model=32, d_state=16,
                  headdim=16, out=str(tmp_path / "s"), **common)
    student, s_metrics = train(s_args, log=lambda *_: None)
    assert np.isfinite(s_metrics["history"][-1]["loss"])
    from agents.checkpoint import file_sha256  # the pair: the student names its teacher's adapter, byte for byte

    s_meta = json.loads((tmp_path / "s" / "config.json").read_text())
    assert s_meta["teacher_adapter_sha256"] == file_sha256(tmp_path / "t" / "adapter.safetensors")
    # reloaded checkpoints schedule exactly as the models in memory (bf16 storage on both sides)
    _, full, _ = _states(n_jobs=6, steps=200)
    for folder, model in (("t", teacher), ("s", student)):
        loaded, meta = load_cjs(tmp_path / folder)
        assert meta["task"] == "cjs"
        from agents.cjs_llm import save_cjs

        save_cjs(model, tmp_path / f"{folder}2", {})
        again, _ = load_cjs(tmp_path / f"{folder}2")
        a = ModelScheduler(model=loaded).act_list(full)
        b = ModelScheduler(model=again).act_list(full)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    # a later call continues from the checkpoint (no cloning: straight to validation and DAgger)
    more = Args(**{**vars(s_args), "init_from": str(tmp_path / "s"), "bc_episodes": 0, "out": str(tmp_path / "s3")})
    _, m3 = train(more, log=lambda *_: None)
    assert [h["stage"] for h in m3["history"]] == ["init", "dagger"]
    ev = evaluate_only(Args(eval_only=str(tmp_path / "s"), eval_seeds=1, eval_jobs=1, device="cpu"), log=lambda *_: None)
    assert ev["test"]["seeds"] == 1 and np.isfinite(ev["test"]["mean_jct_s"])
    # each finished workload is kept as it ends (a run cut by a time limit keeps them)
    ev = evaluate_only(Args(eval_only=str(tmp_path / "t"), eval_seeds=2, eval_jobs=2, device="cpu", out=str(tmp_path / "p")),
                       log=lambda *_: None)
    part = json.loads((tmp_path / "p" / "partial.json").read_text())
    assert ev["lora_merged"] and sorted(part["finished"]) == ["2000", "2001"]
    assert [part["finished"][str(s)]["mean_jct_s"] for s in (2000, 2001)] == pytest.approx(ev["test"]["per_seed_mean_jct_s"])
    # a held-out run split over processes (disjoint seeds) merges into the run over all seeds
    from distill.cjs_llm import main, merge_evals

    one = evaluate_only(Args(eval_only=str(tmp_path / "s"), eval_seeds=3, eval_jobs=3, device="cpu"), log=lambda *_: None)
    for first, n in ((2000, 2), (2002, 1)):
        main(["--eval-only", str(tmp_path / "s"), "--eval-first", str(first), "--eval-seeds", str(n), "--eval-jobs", "3",
              "--device", "cpu", "--out", str(tmp_path / f"e{first}")])
    parts = [str(tmp_path / "e2002"), str(tmp_path / "e2000")]
    merged = merge_evals(parts)["test"]
    for k in ("seeds", "mean_jct_s", "mean_jct_std_s", "median_jct_s", "p90_jct_s", "makespan_s", "decisions"):
        assert merged[k] == pytest.approx(one["test"][k], abs=2e-3), k
    assert merged["seed_list"] == [2000, 2001, 2002] and merge_evals(parts)["lora_merged"] is False  # a student
    with pytest.raises(SystemExit, match="overlap"):
        merge_evals(parts + parts[:1])
    with pytest.raises(SystemExit, match="no metrics.json"):
        merge_evals(parts + [str(tmp_path / "never_ran")])


def test_anchored_schedulers_start_as_the_gnn(tmp_path, data_root):
    """--task-init: a teacher or student anchored to a GNN scores every action as that GNN does
    (the backbone's reading enters through zeroed projections); CWR from such a teacher keeps it so;
    training then moves the projections off zero (the backbone gets gradients)."""
    from agents.cjs_gnn import save_checkpoint
    from distill.cjs_llm import CJSDistillation as Args, _anchor
    from distill.cwr import cwr_init_cjs

    torch.manual_seed(4)
    gnn = DecimaGNN(GNNConfig(hidden=8, rounds=2)).eval()
    save_checkpoint(gnn, tmp_path / "gnn", {})
    states, _, acts = _states()
    arrays, _ = pad_stack(states)
    o = to_tensors(arrays)
    teacher, student = CJSTeacher(TINY_T).eval(), CJSStudent(TINY_S).eval()
    assert _anchor(teacher, str(tmp_path / "gnn"))["task_init"] == "decima-gnn"
    cwr = CJSStudent(TINY_S).eval()
    cwr_init_cjs(cwr, teacher)
    _anchor(student, str(tmp_path / "gnn"))
    with torch.no_grad():
        want = gnn(o)
        for model in (teacher, student, cwr):
            got = model(o)
            torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-5)
    opt = torch.optim.Adam([p for p in teacher.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        o2, sl, li = _stack(states, acts)
        loss = -action_logp(teacher, o2, sl, li)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert teacher.task.j_proj.weight.abs().sum() > 0
    lora = [p for n, p in teacher.named_parameters() if "lora_B" in n]
    assert lora and any(p.abs().sum() > 0 for p in lora)
    try:
        _anchor(CJSTeacher(CJSTeacherConfig(backbone="tiny-random", lora_rank=4, hidden=16, rounds=2)), str(tmp_path / "gnn"))
    except ValueError as err:
        assert "does not match" in str(err)
    else:
        raise AssertionError("a GNN of another width must be refused")
    assert Args().task_init == "agents/pretrained/cjs_gnn"
    # --anchor-lr 0: a DAgger round leaves the GNN's parts as they were and trains the rest
    from distill.cjs_llm import train

    gnn = DecimaGNN(GNNConfig(hidden=8)).eval()  # distill.cjs builds 8 message-passing rounds
    save_checkpoint(gnn, tmp_path / "gnn", {})
    args = Args(role="student", teacher="", init="random", layers="mma", d_model=32, d_state=16, headdim=16, hidden=8,
                jobs=2, bc_episodes=0, dagger_rounds=1, dagger_episodes=1, dagger_epochs=1, dagger_beta=0.0,
                val_seeds=1, val_jobs=2, eval_seeds=0, batch_size=64, device="cpu", decision_cap=40,
                task_init=str(tmp_path / "gnn"), anchor_lr=0.0, validate_start=False, out=str(tmp_path / "a"))
    trained, metrics = train(args, log=lambda *_: None)
    assert metrics["history"][0]["val_mean_jct_s"] is None  # the start was not validated (no Infinity in JSON)
    torch.testing.assert_close(trained.task.stage_head[0].weight, gnn.stage_head[0].weight)
    assert trained.task.j_proj.weight.abs().sum() > 0
    # the GNN as the KL reference (trust region) while wfair labels: trains; CWR from a GNN is refused
    kl = Args(**{**vars(args), "teacher": str(tmp_path / "gnn"), "labeler": "pool", "out": str(tmp_path / "k")})
    _, m = train(kl, log=lambda *_: None)
    assert np.isfinite(m["history"][-1]["loss"])
    try:
        train(Args(**{**vars(kl), "init": "cwr"}), log=lambda *_: None)
    except SystemExit as err:
        assert "LLM --teacher" in str(err)
    else:
        raise AssertionError("CWR from a GNN must be refused")


def test_merged_teacher_scores_as_the_adapted_one(data_root):
    """for_inference merges the LoRA adapters into the weights: same logits (to rounding), no adapters
    left; a student passes through unchanged."""
    from agents.cjs_llm import for_inference

    torch.manual_seed(5)
    teacher = CJSTeacher(TINY_T).eval()
    with torch.no_grad():
        for n, p in teacher.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)  # trained adapters (B starts at zero)
    states, _, _ = _states()
    o = to_tensors(pad_stack(states)[0])
    with torch.no_grad():
        want = teacher(o)
        merged = for_inference(teacher)
        got = merged(o)
    assert not [n for n, _ in merged.named_parameters() if "lora_" in n]
    torch.testing.assert_close(got[0], want[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1], want[1], atol=1e-4, rtol=1e-4)
    student = CJSStudent(TINY_S)
    assert for_inference(student) is student


def test_distill_entry_points_dispatch_their_commands(monkeypatch, capsys):
    """``python -m distill.<task> COMMAND ...`` hands the rest of the line to that command's module, with
    the role or task it fixes; an unknown command is one line and exit code 2."""
    import distill.cjs_llm
    import distill.rl
    import distill.vp_llm
    from distill import abr, cjs, vp

    calls = []
    monkeypatch.setattr(distill.cjs_llm, "main", lambda argv, role: calls.append(("cjs", role, argv)))
    monkeypatch.setattr(distill.vp_llm, "main", lambda argv, role: calls.append(("vp", role, argv)))
    monkeypatch.setattr(distill.rl, "main", lambda argv, env: calls.append(("rl", env, argv)))
    cjs.main(["student", "--jobs", "5"])
    vp.main(["teacher", "--out", "x"])
    abr.main(["ppo", "--timesteps", "3"])
    assert calls == [("cjs", "student", ["--jobs", "5"]), ("vp", "teacher", ["--out", "x"]),
                     ("rl", "abr", ["--timesteps", "3"])]
    with pytest.raises(SystemExit) as exc:
        cjs.main(["trian"])
    assert exc.value.code == 2 and "unknown command 'trian'" in capsys.readouterr().err


def test_shipped_student_is_a_cjs_agent(data_root):
    """``student`` loads the shipped Mamba scheduler (bf16 checkpoint) and finishes a small workload; it is not
    in the CPU default list of ``evaluation.compare``."""
    from agents import agent_names, default_agents, make_agent
    from envs.cjs import CJSConfig
    from evaluation.cjs import evaluate_cjs

    CJS_AGENTS, CJS_DEFAULT_AGENTS = agent_names("cjs"), [s.name for s in default_agents("cjs", gpu=False)]
    assert "student" in CJS_AGENTS and "student" not in CJS_DEFAULT_AGENTS
    pol = make_agent("cjs", "student")
    assert pol.name == "student" and type(pol.model).__name__ == "CJSStudent"
    run = evaluate_cjs(pol, [1000], CJSConfig(num_jobs=4))
    assert len(run.jct_s[0]) == 4 and np.all(np.isfinite(run.jct_s[0])) and np.all(run.jct_s[0] > 0)


def _replay_pinned(name: str, data_root) -> tuple[np.ndarray, dict]:
    """The shipped CJS agent ``name`` on the jobs its checkpoint pins (``pinned_mean_jct_s``): per-job JCTs, meta."""
    from agents import agent_spec, make_agent
    from envs.cjs import CJSConfig
    from evaluation.cjs import evaluate_cjs, reference_workloads

    meta = json.loads((agent_spec("cjs", name).folder / "config.json").read_text())
    pinned = meta["pinned_mean_jct_s"]
    jobs = reference_workloads(str(data_root / "cjs/reference"))[pinned["seed"]][:pinned["jobs"]]
    run = evaluate_cjs(make_agent("cjs", name), [pinned["seed"]], CJSConfig(num_jobs=len(jobs)),
                       workloads={pinned["seed"]: jobs})
    return run.jct_s[0], meta


def test_shipped_teacher_scores_its_recorded_jct(data_root):
    """The shipped teacher's quality is pinned: its mean JCT on the first 10 jobs of reference workload 1 (the
    SmolLM2 backbone on the CPU: ~8 s), as recorded in its checkpoint."""
    jct, meta = _replay_pinned("teacher", data_root)
    assert len(jct) == meta["pinned_mean_jct_s"]["jobs"]
    assert jct.mean() == pytest.approx(meta["pinned_mean_jct_s"]["mean_jct_s"], rel=1e-9)


def test_shipped_student_scores_its_recorded_jct_and_names_the_shipped_teacher(data_root):
    """The shipped student's quality is pinned (its mean JCT on the first 40 jobs of reference workload 1, as
    recorded in its checkpoint), and it is the student of the teacher that ships: its checkpoint records the
    SHA-256 of the teacher adapter it was distilled from."""
    from agents import agent_spec
    from agents.checkpoint import file_sha256

    jct, meta = _replay_pinned("student", data_root)
    assert meta["teacher_adapter_sha256"] == file_sha256(agent_spec("cjs", "teacher").folder / "adapter.safetensors")
    assert len(jct) == meta["pinned_mean_jct_s"]["jobs"]
    assert jct.mean() == pytest.approx(meta["pinned_mean_jct_s"]["mean_jct_s"], rel=1e-9)


def test_shipped_teacher_is_a_cjs_agent(monkeypatch, data_root):
    """``teacher`` loads the shipped CJS adapter (every trained tensor present, shapes matching SmolLM2's)
    and schedules a small workload; its backbone here is a random model of SmolLM2's shape (the real one
    scores in ``test_shipped_teacher_scores_its_recorded_jct``). Not in the CPU default list of
    ``evaluation.compare``."""
    import agents.teacher
    from agents import agent_names, agent_spec, default_agents
    from envs.cjs import CJSConfig

    CJS_AGENTS, CJS_DEFAULT_AGENTS = agent_names("cjs"), [s.name for s in default_agents("cjs", gpu=False)]
    PRETRAINED_CJS_TEACHER = agent_spec("cjs", "teacher").folder

    assert "teacher" in CJS_AGENTS and "teacher" not in CJS_DEFAULT_AGENTS
    meta = json.loads((PRETRAINED_CJS_TEACHER / "config.json").read_text())
    assert meta["model"] == "cjs-teacher" and meta["config"]["backbone"] == "smollm2-135m"
    real = agents.teacher.load_backbone
    monkeypatch.setattr(agents.teacher, "load_backbone", lambda name: real("shape:smollm2-135m"))
    torch.manual_seed(0)
    pol = make_agent("cjs", "teacher")
    assert pol.name == "teacher" and type(pol.model).__name__ == "CJSTeacher"
    assert not [n for n, _ in pol.model.named_parameters() if "lora_" in n]  # merged for inference
    run = evaluate_cjs(pol, [1000], CJSConfig(num_jobs=3))
    assert len(run.jct_s[0]) == 3 and np.all(np.isfinite(run.jct_s[0])) and np.all(run.jct_s[0] > 0)



def test_share_features_are_wfairs_statistics(tmp_path, data_root):
    """``share_features``: on real states, the share column is wfair's share of each present job, the
    candidate flag with a schedulable stage gives wfair's candidates, and the least work rank among them is
    wfair's choice. A student with them, started from a checkpoint without them (``--init-from``: zero
    columns for the new inputs), scores every decision as that checkpoint; it saves and loads."""
    import dataclasses

    from agents.cjs import WeightedFair
    from agents.cjs_llm import save_cjs, share_features
    from distill.cjs_llm import _continue_from

    wf = WeightedFair()
    states, full, _ = _states(n_jobs=30, seed=5, every=20, steps=600)
    assert len(states) >= 20
    for obs in states:
        present, mask, ranked, share, _ = wf.observed(obs)
        f = share_features(torch.as_tensor(obs["job_features"])[None], 50)[0].numpy()
        assert np.all(f[len(present):] == 0) and np.array_equal(np.rint(f[present, 0] * 50), share)
        cand = np.flatnonzero((f[present, 2] > 0) & mask[present].any(1))
        assert sorted(cand.tolist()) == sorted(ranked.tolist())
        if len(cand):  # the round's own job first (it takes its executors), else the least work left
            source = [c for c in cand if obs["job_features"][present[c], 5] > 0]
            assert (source[0] if source else cand[np.argmin(f[present[cand], 3])]) == ranked[0]
    torch.manual_seed(0)
    plain = CJSStudent(TINY_S).eval()
    save_cjs(plain, tmp_path / "plain", {})
    wide = CJSStudent(dataclasses.replace(TINY_S, share_features=True)).eval()
    _continue_from(wide, str(tmp_path / "plain"))
    arrays, _ = pad_stack(states)
    o = to_tensors(arrays)
    ref, _ = load_cjs(tmp_path / "plain")  # the checkpoint as saved (bf16 weights)
    with torch.no_grad():
        (a, b), (c, d) = ref(o), wide(o)
    torch.testing.assert_close(c, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(d, b, atol=1e-5, rtol=1e-5)
    save_cjs(wide, tmp_path / "wide", {})
    back, _ = load_cjs(tmp_path / "wide")
    assert back.cfg.share_features and back.task.tok.in_features == TINY_S.hidden + 6 + 4
    with torch.no_grad():
        torch.testing.assert_close(back(o)[0], c)
