"""LeRobot policies in our runtime: `lam-ros train-lerobot` (ACT, Diffusion through
lerobot's training pieces) and `lam_ros.lerobot_policy.LeRobotPolicy`.

Tiny configurations trained for a few steps on tiny multi-view datasets (two
datasets trained together), so the whole file runs in well under a minute."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from _vla_helpers import CAMERAS, make_tiny_dataset

TRAIN_SIZE = 32
TINY_OPTIONS = {
    "act": ["chunk_size=4", "n_action_steps=1", "temporal_ensemble_coeff=0.01", "dim_model=32", "n_heads=2",
            "dim_feedforward=64", "n_encoder_layers=1", "n_vae_encoder_layers=1", "latent_dim=8"],
    "diffusion": ["horizon=8", "n_obs_steps=2", "n_action_steps=4", "down_dims=[16,32]", "n_groups=4",
                  "diffusion_step_embed_dim=16", "spatial_softmax_num_keypoints=8", "num_inference_steps=2",
                  "drop_n_last_frames=1", "scheduler_warmup_steps=1"],
}
INSTRUCTION = "put the carrot on the plate"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot_data")
    a = make_tiny_dataset(root / "task_a", episodes=2, frames=8, size=TRAIN_SIZE, seed=0)
    b = make_tiny_dataset(root / "task_b", episodes=2, frames=8, size=TRAIN_SIZE, seed=1)
    info = json.loads((b / "meta" / "info.json").read_text())
    info["lam_ros"] = {"action_convention": "bridge_delta"}  # one explicit, one by default: the same convention
    (b / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return [a, b]


def _train(kind: str, datasets, out, extra=()) -> int:
    from lam_ros.cli import main

    argv = ["train-lerobot", "--policy", kind, "--dataset", *map(str, datasets), "--out", str(out),
            "--steps", "3", "--batch-size", "4", "--seed", "0", "--cameras", ",".join(CAMERAS),
            "--image-size", f"{TRAIN_SIZE}x{TRAIN_SIZE}", "--log-every", "0", *extra]
    for option in TINY_OPTIONS[kind]:
        argv += ["--policy-option", option]
    return main(argv)


@pytest.fixture(scope="module", params=["act", "diffusion"])
def trained(request, datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"lerobot_{request.param}") / "policy"
    assert _train(request.param, datasets, out) == 0
    return request.param, out


def _images(h: int, w: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for c in CAMERAS}


def test_cli_writes_a_loadable_lerobot_policy_directory(trained):
    from lerobot.policies.factory import get_policy_class

    from lam_ros.lerobot_policy import LeRobotPolicy, is_lerobot_checkpoint

    kind, out = trained
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["type"] == kind
    assert config["pretrained_backbone_weights"] is None  # random init: nothing downloaded
    meta = json.loads((out / "lam_ros_meta.json").read_text())
    assert meta["robot"] == "widowx" and meta["cameras"] == list(CAMERAS)
    assert meta["image_size"] == [TRAIN_SIZE, TRAIN_SIZE] and meta["action_convention"] == "bridge_delta"
    assert meta["action_names"][0] == "dx" and len(meta["state_names"]) == 7 and meta["fps"] == 5
    assert meta["frame_codec"] == "h264" and meta["recorded_image_size"] == [TRAIN_SIZE, TRAIN_SIZE]
    assert meta["normalisation_floored_dims"] == {"action": [], "observation.state": []}  # these data span the floors
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["episodes"] == 4 and summary["frames"] == 32  # both datasets were trained on

    assert is_lerobot_checkpoint(out)
    assert not is_lerobot_checkpoint(out.parent)
    get_policy_class(kind).from_pretrained(out)  # lerobot itself loads it
    policy = LeRobotPolicy.load(out, robot="widowx", action_dim=7, cameras=[*CAMERAS, "side"])
    assert (policy.cameras, policy.robot, policy.action_dim) == (list(CAMERAS), "widowx", 7)
    assert policy.image_size == (TRAIN_SIZE, TRAIN_SIZE) and policy.uses_state
    assert policy.action_convention == "bridge_delta"
    assert policy.chunk_size == 4


def test_act_resizes_any_resolution_and_returns_finite_in_range_actions(trained):
    import torch

    from lam_ros.lerobot_policy import LeRobotPolicy

    kind, out = trained
    policy = LeRobotPolicy.load(out)
    seen = []
    original = policy.policy.select_action

    def spy(batch):
        seen.append({k: tuple(v.shape) for k, v in batch.items() if k.startswith("observation.images.")})
        return original(batch)

    policy.policy.select_action = spy
    state = np.zeros(7, np.float32)
    for t in range(6):  # crosses Diffusion's n_action_steps=4: a second chunk is planned
        action = policy.act(_images(48, 80, seed=t), INSTRUCTION, state)
        assert action.shape == (7,) and action.dtype == np.float32
        assert np.isfinite(action).all()
        assert (action >= policy.low).all() and (action <= policy.high).all()
        assert action[-1] in (policy.low[-1], policy.high[-1])  # binarised gripper
    assert seen and all(s == {f"observation.images.{c}": (1, 3, TRAIN_SIZE, TRAIN_SIZE) for c in CAMERAS} for s in seen)
    chunk = policy.step(_images(100, 60), INSTRUCTION, state)
    assert chunk.shape == (policy.chunk_size, 7) and np.isfinite(chunk).all()

    # Whatever the model says, the executed action stays within the training range.
    policy.reset()
    policy.policy.select_action = lambda batch: torch.full((1, 7), 1e4)
    action = policy.act(_images(48, 80), INSTRUCTION, state)
    np.testing.assert_array_equal(action, policy.high)


def test_policy_sees_frames_through_the_codec_of_its_training_videos(trained):
    """As our VLA runtime does: frames are resized to the recorded size, passed through lerobot's encoder
    and decoder with the training videos' codec, then resized to the policy's input; "off" skips the codec."""
    from lam_ros.lerobot_policy import LeRobotPolicy
    from lam_ros.recording.codec import round_trip
    from models.image_prep import resize_images

    kind, out = trained
    images = _images(48, 80, seed=3)
    state = np.zeros(7, np.float32)
    for codec, expect in (("auto", lambda img: round_trip(resize_images(img, TRAIN_SIZE)[None])[0]),
                          ("off", lambda img: resize_images(img, TRAIN_SIZE))):
        policy = LeRobotPolicy.load(out, frame_codec=codec)
        assert policy.frame_codec == (None if codec == "off" else "h264")
        obs = policy._observation(images, INSTRUCTION, state)  # the batch handed to lerobot's pre-processor
        for cam in CAMERAS:
            seen = (obs[f"observation.images.{cam}"] * 255).round().byte().permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(seen, expect(images[cam]))
        assert np.isfinite(policy.act(images, INSTRUCTION, state)).all()
    with pytest.raises(ValueError, match="unknown video codec 'nope'"):
        LeRobotPolicy.load(out, frame_codec="nope")


def test_nan_producing_policy_is_never_passed_on(trained):
    import torch

    from lam_ros.lerobot_policy import LeRobotPolicy
    from lam_ros.policy import NonFiniteActionError

    kind, out = trained
    policy = LeRobotPolicy.load(out)
    with torch.no_grad():
        for p in policy.policy.parameters():
            p.fill_(float("nan"))
    state = np.zeros(7, np.float32)
    for _ in range(3):  # queued NaN actions are dropped too: every call refuses
        with pytest.raises(NonFiniteActionError):
            policy.act(_images(TRAIN_SIZE, TRAIN_SIZE), INSTRUCTION, state)
    with pytest.raises(NonFiniteActionError):
        policy.step(_images(TRAIN_SIZE, TRAIN_SIZE), INSTRUCTION, state)


def test_mismatched_checkpoint_or_input_is_refused_in_one_line(trained):
    from lam_ros.lerobot_policy import LeRobotPolicy

    kind, out = trained
    cases = [
        (dict(robot="piper"), "trained for robot 'widowx', not 'piper'"),
        (dict(cameras=["third_person", "side"]), "needs camera(s) ['wrist']"),
        (dict(action_dim=8), "predicts 7-D actions"),
        (dict(image_size=64), "trained on 32x32 images"),
        (dict(action_convention="absolute_ee"), "outputs 'bridge_delta' actions"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as err:
            LeRobotPolicy.load(out, **kwargs)
        assert message in str(err.value) and "\n" not in str(err.value), (kwargs, str(err.value))

    policy = LeRobotPolicy.load(out)
    with pytest.raises(ValueError, match=r"lack camera\(s\) \['wrist'\]"):
        policy.act({"third_person": _images(32, 32)["third_person"]}, INSTRUCTION, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="needs the robot state"):
        policy.act(_images(32, 32), INSTRUCTION)
    with pytest.raises(ValueError, match="state must have 7 values"):
        policy.act(_images(32, 32), INSTRUCTION, np.zeros(6, np.float32))


def test_checkpoint_without_our_metadata_cannot_claim_a_robot(trained, tmp_path):
    from lam_ros.lerobot_policy import LeRobotPolicy

    kind, out = trained
    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    (bare / "lam_ros_meta.json").unlink()
    policy = LeRobotPolicy.load(bare)  # a plain LeRobot directory still runs: cameras/size from its config
    assert policy.cameras == list(CAMERAS) and policy.image_size == (TRAIN_SIZE, TRAIN_SIZE)
    with pytest.raises(ValueError, match="nothing confirms it was trained for robot 'widowx'"):
        LeRobotPolicy.load(bare, robot="widowx")


def test_train_refuses_bad_datasets_with_one_line(datasets, tmp_path, capsys):
    conflicting = tmp_path / "absolute"
    shutil.copytree(datasets[1], conflicting)
    info = json.loads((conflicting / "meta" / "info.json").read_text())
    info["lam_ros"] = {"action_convention": "absolute_ee"}
    (conflicting / "meta" / "info.json").write_text(json.dumps(info))
    cases = [
        (([datasets[0], conflicting], ()), "different action conventions"),
        ((datasets, ("--cameras", "third_person,side")), "has no camera(s) ['side']"),
        (([tmp_path / "missing"], ()), "not a LeRobot dataset"),
    ]
    for (sources, extra), message in cases:
        capsys.readouterr()
        assert _train("act", sources, tmp_path / "out", extra) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_near_constant_dims_are_not_stretched_by_lerobots_normalisation():
    """IK-noise dims (droll, dpitch about 3e-4 rad wide) must not become full-scale targets under
    MEAN_STD or MIN_MAX; dims that really move, and the gripper, keep their statistics."""
    from models.vla.normalization import default_min_range
    from training.train_lerobot import floor_stats

    std = np.array([0.02, 0.02, 0.02, 1e-4, 2e-4, 0.1, 0.5], np.float32)
    low = np.array([-0.05, -0.05, -0.05, -2e-4, -3e-4, -0.3, 0.0], np.float32)
    original = {"min": low, "max": -low + 1e-5, "q01": low, "q99": -low}
    stats = {"action": {"mean": np.zeros(7, np.float32), "std": std.copy(), **{k: v.copy() for k, v in original.items()}}}
    floor = np.append(default_min_range(6), 0.0)
    assert floor_stats(stats, "action", floor) == [3, 4]
    entry = stats["action"]
    np.testing.assert_allclose(entry["std"][[0, 1, 2, 5, 6]], std[[0, 1, 2, 5, 6]])
    np.testing.assert_allclose(entry["std"][[3, 4]], 0.05 / 4.652, rtol=1e-4)  # the VLA's 0.05 rad floor, as a std
    for lo, hi in (("min", "max"), ("q01", "q99")):
        width = entry[hi] - entry[lo]
        np.testing.assert_allclose(width[[3, 4]], 0.05, rtol=1e-5)  # widened to the floor ...
        np.testing.assert_allclose((entry[hi] + entry[lo])[[3, 4]], (original[hi] + original[lo])[[3, 4]], atol=1e-7)
        assert entry[lo][0] == low[0] and entry[lo][6] == 0.0  # ... and nothing else touched
    # a 3e-4 rad wobble in droll is now a small fraction of the normalised scale, not several units
    assert 3e-4 / entry["std"][3] < 0.05
