"""train-lam / eval-lam end to end on a tiny multi-view LeRobot dataset; bad input."""

import argparse
import json
import logging

import pytest
import torch

from _lam_helpers import make_multiview_dataset

torch.set_num_threads(1)

SMALL = ["--image-size", "32", "--patch-size", "8", "--hidden-dim", "32", "--code-dim", "16", "--heads", "2",
         "--depth", "1", "--num-codes", "8", "--num-tokens", "2", "--batch-size", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_multiview_dataset(tmp_path_factory.mktemp("data") / "ds", episodes=3, length=12)


def parse(module, argv):
    p = argparse.ArgumentParser()
    module.configure(p)
    return p.parse_args(argv)


def train_args(dataset, out, *extra):
    from lam_ros.commands import train_lam
    return train_lam, parse(train_lam, ["--dataset", str(dataset), "--views", "cam_a,cam_b", "--output", str(out),
                                        *SMALL, *extra])


def test_train_resume_and_eval(dataset, tmp_path, caplog):
    from lam_ros.commands import eval_lam
    mod, args = train_args(dataset, tmp_path / "run", "--objective", "mvp+ac", "--steps", "12",
                           "--save-every", "6", "--frame-gap", "0.4s", "--usage-warn", "1.01",
                           "--holdout-frac", "0.34")
    with caplog.at_level(logging.WARNING):
        assert mod.run(args) == 0
    ck = tmp_path / "run" / "checkpoint"
    state = json.loads((ck / "train_state.json").read_text())
    assert state["step"] == 12 and len(state["history"]) >= 1
    assert json.loads((ck / "config.json").read_text())["frame_gap"] == 2  # 0.4 s at 5 fps
    assert (tmp_path / "run" / "training_curves.png").stat().st_size > 1000
    assert "codebook collapse warning" in caplog.text  # threshold above 100% always warns
    assert "the LAM's codes have collapsed on view 'cam_a'" in caplog.text  # the trained model's own verdict too
    assert all(0 < h["effective_codes"] <= 1 for h in state["history"])
    assert set(state["final_effective_codes"]) == {"cam_a", "cam_b"}
    assert all(0 < e <= 1 for e in state["final_effective_codes"].values())
    # resume continues from step 12 with the saved optimizer state
    mod2, args2 = train_args(dataset, tmp_path / "run", "--objective", "mvp+ac", "--steps", "15", "--resume",
                             "--frame-gap", "0.4s", "--holdout-frac", "0.34")
    assert mod2.run(args2) == 0
    state2 = json.loads((ck / "train_state.json").read_text())
    assert state2["step"] == 15 and state2["history"][0] == state["history"][0]
    # eval
    out = tmp_path / "eval"
    assert eval_lam.run(parse(eval_lam, ["--checkpoint", str(ck), "--dataset", str(dataset), "--output", str(out),
                                         "--mi-steps", "30", "--split", "heldout"])) == 0
    rep = json.loads((out / "eval.json").read_text())
    assert rep["episodes"] == 1 and set(rep["per_view"]) == {"cam_a", "cam_b"}
    for key in ("ksg_bits", "ksg_shuffled_bits", "ba_bits", "mine_bits", "probe_nmse", "view_probe_acc",
                "additivity_residual", "codebook_usage"):
        assert key in rep["summary"]
    assert "| mvp+ac |" in (out / "eval.md").read_text()
    assert (out / "eval_codes.png").is_file()


def test_resume_with_other_architecture_is_refused(dataset, tmp_path):
    mod, args = train_args(dataset, tmp_path / "run", "--steps", "2", "--objective", "single")
    mod.run(args)
    mod, args = train_args(dataset, tmp_path / "run", "--steps", "4", "--objective", "single", "--resume",
                           "--hidden-dim", "64")
    with pytest.raises(ValueError, match="hidden_dim: model 64 vs checkpoint 32"):
        mod.run(args)


def test_bad_inputs(dataset, tmp_path):
    from lam_ros.commands import train_lam
    with pytest.raises(ValueError, match=r"view 'wrist' is not in dataset .* cameras are \['cam_a', 'cam_b'\]"):
        train_lam.run(parse(train_lam, ["--dataset", str(dataset), "--views", "cam_a,wrist", "--output",
                                        str(tmp_path / "x"), *SMALL]))
    mod, args = train_args(dataset, tmp_path / "y", "--frame-gap", "5s")
    with pytest.raises(ValueError, match="longer than every episode"):
        mod.run(args)
    mod, args = train_args(dataset, tmp_path / "y", "--frame-gap", "soon")
    with pytest.raises(ValueError, match="frame gap must be"):
        mod.run(args)
    with pytest.raises(ValueError, match="at least 2 --views"):
        train_lam.run(parse(train_lam, ["--dataset", str(dataset), "--views", "cam_a", "--output",
                                        str(tmp_path / "z"), *SMALL]))
    with pytest.raises(FileNotFoundError, match="no LeRobot dataset"):
        train_lam.run(parse(train_lam, ["--dataset", str(tmp_path / "nope"), "--views", "cam_a", "--objective",
                                        "single", "--output", str(tmp_path / "z"), *SMALL]))


def test_nan_actions_rejected(tmp_path):
    from training.lam_data import load_episodes
    root = make_multiview_dataset(tmp_path / "nan", episodes=1, length=4, nan_action=True)
    with pytest.raises(ValueError, match="episode 0 frame 0: action contains NaN"):
        load_episodes([root], ["cam_a", "cam_b"], 32)


def test_trunk_features_are_computed_once_across_runs_sharing_a_feature_cache(dataset, tmp_path, monkeypatch):
    """`--feature-source effnet --feature-cache F`: the first run computes every frame's trunk features and writes
    F; a second run on the same frames (another objective, as the study's cells) runs the trunk on none."""
    from models import pretrained_vision as pv

    computed = []
    original = pv.EfficientNetLiteTrunk._compute
    monkeypatch.setattr(pv.EfficientNetLiteTrunk, "_compute", lambda self, x: computed.append(len(x)) or original(self, x))
    cache = tmp_path / "trunk_features.safetensors"
    for run, objective in (("a", "mvp"), ("b", "single")):
        mod, args = train_args(dataset, tmp_path / run, "--objective", objective, "--steps", "2",
                               "--feature-source", "effnet", "--feature-cache", str(cache), "--frame-gap", "0.4s")
        assert mod.run(args) == 0
        if run == "a":
            first = sum(computed)
            assert first > 0 and cache.is_file()
    assert sum(computed) == first  # run b: every frame from the file
    ck = json.loads((tmp_path / "b" / "checkpoint" / "config.json").read_text())
    assert ck["feature_source"] == "effnet"
    mod, args = train_args(dataset, tmp_path / "c", "--steps", "1", "--feature-cache", str(cache))
    with pytest.raises(ValueError, match="feature cache needs a frozen trunk"):
        mod.run(args)
