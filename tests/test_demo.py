"""`lam-ros demo`: stage order, data routing, resuming, and bad arguments (subcommands faked)."""

import argparse
import json

import pytest

from lam_ros.commands import demo


def _args(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    return parser.parse_args(["--out", str(tmp_path), "--tasks", "carrot_on_plate,stack_cube", *extra])


@pytest.fixture
def calls(monkeypatch):
    """Replace each subcommand by a recorder that creates the output the real one would."""
    seen = []

    def fake(name, argv):
        seen.append((name, argv))
        for flag in ("--output", "--out"):
            if flag in argv:
                target = argv[argv.index(flag) + 1]
                from pathlib import Path

                path = Path(target) / ("checkpoint" if name == "train-lam" else "")
                path.mkdir(parents=True, exist_ok=True)
        if name == "eval-sim":  # what merge_results reads
            agent = argv[argv.index("--name") + 1]
            agents = [agent] + ([] if "--no-expert" in argv else ["expert"])
            tasks = argv[argv.index("--tasks") + 1].split(",")
            cell = {"success": 0.5, "placed": 0.5, "grasp": 1.0}
            (path / "results.json").write_text(json.dumps({
                "robot": "widowx", "tasks": tasks, "seeds": [1000], "layout": "simpler", "executor": {},
                "agents": {a: a for a in agents}, "episodes": {a: {t: [] for t in tasks} for a in agents},
                "summary": {a: {t: cell for t in [*tasks, "average"]} for a in agents}}))

    monkeypatch.setattr(demo, "_run_subcommand", fake)
    # parallel lanes (--threads 2) run subcommands in their own processes: record those calls the same way
    monkeypatch.setattr(demo, "_run_isolated", lambda name, argv, log_file, threads=1: fake(name, argv))
    return seen


def test_pipeline_runs_every_stage_in_order_with_the_right_data(tmp_path, calls):
    assert demo.run(_args(tmp_path)) == 0
    names = [name for name, _ in calls]
    assert names == ["record-sim"] * 4 + ["train-lam", "pretrain-vla", "finetune-vla", "finetune-vla"] + ["eval-sim"] * 3
    record_roots = [argv[argv.index("--output") + 1] for name, argv in calls if name == "record-sim"]
    play = [r for r in record_roots if "/play_" in r]
    labelled = [r for r in record_roots if "/labelled_" in r]
    assert len(play) == len(labelled) == 2
    # The LAM learns from the play data; stage 1 sees the videos of both sets (no actions: pretrain-vla
    # takes none); finetuning only the labelled data.
    lam_argv = calls[4][1]
    assert lam_argv[lam_argv.index("--dataset") + 1].split(",") == play
    pre_argv = calls[5][1]
    assert set(play) | set(labelled) <= set(pre_argv)
    for _, argv in calls[6:8]:
        assert set(labelled) <= set(argv) and not set(play) & set(argv)
    # Stage 1 computes the frozen trunk's features once; both finetunes read the same file.
    caches = {argv[argv.index("--feature-cache") + 1] for _, argv in calls[5:8]}
    assert caches == {str(tmp_path / demo.FEATURE_CACHE)}
    # One finetune starts from the stage-1 checkpoint, the baseline from scratch.
    inits = {argv[argv.index("--init") + 1] for _, argv in calls[6:8]}
    assert inits == {str(tmp_path / "vla_pretrained"), demo.BACKBONE}
    pre_backbone = pre_argv[pre_argv.index("--backbone") + 1]
    assert pre_backbone == demo.BACKBONE == "tiny-effnet"  # stage 1 and the scratch baseline: the same network

    # ... and otherwise trains exactly the same way (same parameters, data, budget, inputs, loss): stage 2
    # trains on actions only (the latent-token loss beside it cost the latent policy its success, session 8).
    def recipe(argv):
        return [a for i, a in enumerate(argv) if i == 0 or argv[i - 1] not in ("--init", "--out")]

    policy_argv = next(argv for _, argv in calls[6:8] if str(tmp_path / "vla_pretrained") in argv)
    scratch_argv = next(argv for _, argv in calls[6:8] if demo.BACKBONE in argv)
    assert "--lam" not in policy_argv + scratch_argv
    assert recipe(policy_argv) == recipe(scratch_argv)
    assert {"--use-state", "full"} <= set(calls[6][1])
    # Labelled demos end shortly after success; evaluation runs the SIMPLER 24 episodes per task.
    labelled_argv = [argv for name, argv in calls if name == "record-sim" and "/labelled_" in argv[argv.index("--output") + 1]]
    assert all(argv[argv.index("--stop-after-success") + 1] == str(demo.STOP_AFTER_SUCCESS) for argv in labelled_argv)
    # Evaluation uses seeds no demonstration used.
    evals = {argv[argv.index("--name") + 1]: argv for name, argv in calls if name == "eval-sim"}
    assert evals["policy"][evals["policy"].index("--checkpoint") + 1] == str(tmp_path / "vla_finetuned")
    assert evals["scratch"][evals["scratch"].index("--checkpoint") + 1] == str(tmp_path / "vla_scratch")
    assert evals["expert"][evals["expert"].index("--checkpoint") + 1] == "expert"  # the expert runs once, in its own lane
    assert all("--no-expert" in argv for argv in evals.values())
    for eval_argv in evals.values():
        assert int(eval_argv[eval_argv.index("--seed") + 1]) == demo.EVAL_SEED
        assert eval_argv[eval_argv.index("--episodes") + 1] == "24"
    # ... and one table holds all three agents
    table = (tmp_path / "eval" / "results.md").read_text()
    assert all(f"| {a} |" in table for a in ("policy", "scratch", "expert"))
    # Every recording and the evaluation place the objects the same way (SIMPLER's configurations).
    layouts = {argv[argv.index("--layout") + 1] for name, argv in calls if name in ("record-sim", "eval-sim")}
    assert layouts == {demo.LAYOUT} == {"simpler"}
    assert (tmp_path / "demo_summary.json").exists()


def test_finished_stages_are_skipped_unless_forced(tmp_path, calls):
    demo.run(_args(tmp_path))
    calls.clear()
    demo.run(_args(tmp_path))
    assert calls == []
    demo.run(_args(tmp_path, "--force", "--stages", "lam"))
    assert [name for name, _ in calls] == ["train-lam"]


@pytest.mark.parametrize("extra,message", [(["--stages", "record,fly"], "unknown stage"),
                                           (["--tasks", "juggle"], "unknown task")])
def test_bad_arguments_are_named(tmp_path, calls, extra, message):
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    args = parser.parse_args(["--out", str(tmp_path), *extra])
    with pytest.raises(ValueError, match=message):
        demo.run(args)
    assert calls == []


def test_parallel_lanes_run_real_subcommands_in_their_own_processes(tmp_path):
    """workers=2: each job is a real `lam-ros` process with its own log; a failing one raises with its log's tail."""
    jobs = [("record-sim", ["--task", task, "--episodes", "1", "--max-steps", "2", "--cameras", "third_person",
                            "--image-size", "64x64", "--output", str(tmp_path / task)])
            for task in ("carrot_on_plate", "stack_cube")]
    demo._run_all(jobs, 2, tmp_path / "logs")
    for task in ("carrot_on_plate", "stack_cube"):
        assert (tmp_path / task / "meta" / "info.json").exists()
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["record-sim_0_carrot_on_plate.log", "record-sim_1_stack_cube.log"]
    # a recording's log says what it wrote, without libx264's per-video statistics or lerobot's per-video codec line
    text = (tmp_path / "logs" / logs[0]).read_text()
    assert "wrote 1 episode(s)" in text
    assert "libx264" not in text and "Using video codec" not in text
    bad = [("record-sim", ["--episodes", "0", "--output", str(tmp_path / "bad")]),
           ("record-sim", ["--episodes", "0", "--output", str(tmp_path / "bad2")])]
    with pytest.raises(RuntimeError, match=r"(?s)exit code .*episodes must be >= 1"):
        demo._run_all(bad, 2, tmp_path / "logs")
