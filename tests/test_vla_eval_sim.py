"""Closed-loop evaluation: a (random) VLA and the scripted expert on the same seeds."""

import argparse
import json

import pytest
import torch

from _vla_helpers import make_action_checkpoint

sim = pytest.importorskip("sim")
torch.set_num_threads(1)


def test_eval_sim_writes_table_videos_and_seeds(tmp_path):
    from lam_ros.commands import eval_sim

    ckpt = make_action_checkpoint(tmp_path / "ckpt")
    parser = argparse.ArgumentParser()
    eval_sim.configure(parser)
    args = parser.parse_args([
        "--checkpoint", str(ckpt), "--robot", "widowx", "--tasks", "carrot_on_plate", "--episodes", "2",
        "--seed", "7", "--max-steps", "3", "--videos", "1", "--image-size", "64", "--layout", "simpler", "--out", str(tmp_path / "eval"),
    ])
    assert eval_sim.run(args) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["seeds"] == [7, 8] and results["layout"] == "simpler"
    assert set(results["summary"]) == {"policy", "expert"}
    for agent in ("policy", "expert"):
        episodes = results["episodes"][agent]["carrot_on_plate"]
        assert [e["seed"] for e in episodes] == [7, 8] and all(e["steps"] == 3 for e in episodes)
        assert 0.0 <= results["summary"][agent]["average"]["success"] <= 1.0
        assert (tmp_path / "eval" / episodes[0]["video"]).stat().st_size > 0
        assert "video" not in episodes[1]
    # --layout simpler reached the simulator: seed s starts in SIMPLER's configuration s
    from sim.tasks import SIMPLER_JITTER_XY, get_task, simpler_configs

    configs = simpler_configs(get_task("carrot_on_plate"))
    for e in results["episodes"]["expert"]["carrot_on_plate"]:
        assert abs(e["start"]["carrot"][0] - configs[e["seed"]][0][0]) < SIMPLER_JITTER_XY + 0.005
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "simpler layout" in table
    assert "| policy |" in table and "| expert |" in table and "carrot_on_plate" in table


def test_eval_sim_bad_arguments(tmp_path):
    from training.eval_sim import evaluate

    with pytest.raises(ValueError, match="unknown task"):
        evaluate({"expert": "expert"}, tmp_path, tasks=["fly"], episodes=1)
    with pytest.raises(ValueError, match="robot"):
        evaluate({"expert": "expert"}, tmp_path, robot="ur5", episodes=1)
    from lam_ros.commands import eval_sim

    parser = argparse.ArgumentParser()
    eval_sim.configure(parser)
    for bad in ("expert", ""):
        with pytest.raises(ValueError, match="--name must be a non-empty name other than 'expert'"):
            eval_sim.run(parser.parse_args(["--checkpoint", str(tmp_path), "--name", bad, "--out", str(tmp_path / "n")]))
    # `--checkpoint expert`: the scripted expert alone, under its own name (a lane of its own in the demo)
    assert eval_sim.run(parser.parse_args(["--checkpoint", "expert", "--tasks", "carrot_on_plate", "--episodes", "1",
                                           "--max-steps", "2", "--videos", "0", "--out", str(tmp_path / "x")])) == 0
    assert list(json.loads((tmp_path / "x" / "results.json").read_text())["agents"]) == ["expert"]
    ckpt = make_action_checkpoint(tmp_path / "piper_ckpt", robot="piper")
    with pytest.raises(ValueError, match="piper"):
        evaluate({"policy": str(ckpt)}, tmp_path / "e", robot="widowx", tasks=["stack_cube"], episodes=1)


def test_rollout_tells_placed_then_undone_from_success():
    """``placed``: the success condition held at some step; ``success``: it holds at the final step
    (SIMPLER). An episode that places the object and then knocks it off is placed, not successful."""
    import numpy as np

    from training.eval_sim import rollout

    class Env:  # scripted info sequence: placed at step 2, undone by step 4
        max_episode_steps = 4
        unwrapped = property(lambda self: self)

        def reset(self, seed):
            self.t = 0
            return {"images": {}}, {}

        def step(self, action):
            self.t += 1
            info = {"success": self.t == 2, "grasp": self.t >= 1}
            return {"images": {}}, 0.0, False, self.t >= 4, info

    rec = rollout(Env(), lambda obs: np.zeros(7), seed=0)
    assert rec["placed"] and not rec["success"] and rec["grasp"] and rec["steps"] == 4


def test_merge_results_joins_separate_evaluations_and_refuses_mismatches(tmp_path):
    from training.eval_sim import merge_results

    def part(sub, agent, seeds=(1000, 1001)):
        ep = [{"seed": s, "success": s == 1000, "video": f"videos/{agent}.mp4"} if s == 1000 else {"seed": s}
              for s in seeds]
        cell = {"success": 0.5, "placed": 0.5, "grasp": 1.0}
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / "results.json").write_text(json.dumps({
            "robot": "widowx", "tasks": ["stack_cube"], "seeds": list(seeds), "layout": "simpler", "executor": {},
            "agents": {agent: agent}, "episodes": {agent: {"stack_cube": ep}}, "image_size": {agent: 64},
            "summary": {agent: {"stack_cube": cell, "average": cell}}}))

    part("a", "policy")
    part("b", "scratch")
    merged = merge_results(["a", "b"], tmp_path)
    assert set(merged["agents"]) == set(merged["summary"]) == {"policy", "scratch"}
    assert merged["episodes"]["scratch"]["stack_cube"][0]["video"] == "b/videos/scratch.mp4"
    assert json.loads((tmp_path / "results.json").read_text()) == merged
    assert "| policy |" in (tmp_path / "results.md").read_text() and "| scratch |" in (tmp_path / "results.md").read_text()
    part("c", "late", seeds=(1000, 1002))
    with pytest.raises(ValueError, match="cannot merge c: its seeds"):
        merge_results(["a", "c"], tmp_path)
    part("d", "policy")
    with pytest.raises(ValueError, match="agent name"):
        merge_results(["a", "d"], tmp_path)


def test_codec_round_trip_is_lerobots_lossy_encode_and_decode():
    """``lam_ros.recording.codec.round_trip``: frames as a recording stores them (lerobot's h264 at crf 30):
    noise does not survive, a flat image almost exactly does, and bad input is refused by name."""
    import numpy as np

    from lam_ros.recording.codec import round_trip

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    out = round_trip(noise)
    assert out.shape == noise.shape and out.dtype == np.uint8 and not np.array_equal(out, noise)
    flat = round_trip(np.full((1, 64, 64, 3), 90, dtype=np.uint8))
    assert np.abs(flat.astype(int) - 90).max() <= 3
    with pytest.raises(ValueError, match="uint8"):
        round_trip(noise.astype(np.float32))
