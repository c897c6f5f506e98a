"""The ROS-free Policy runtime: loading, inference, bad input, temporal ensembling."""

import numpy as np
import pytest
import torch

from lam_ros.policy import ChunkEnsembler, NonFiniteActionError, Policy
from _vla_helpers import CAMERAS, fake_images, make_action_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_action_checkpoint(tmp_path_factory.mktemp("vla") / "ckpt")


@pytest.fixture(scope="module")
def policy(checkpoint):
    return Policy.load(checkpoint, device="cpu", robot="widowx", action_dim=7)


def test_step_returns_finite_chunk_in_range(policy):
    chunk = policy.step(fake_images(0), "put the carrot on the plate")
    assert chunk.shape == (5, 7) and chunk.dtype == np.float32
    assert np.isfinite(chunk).all()
    assert (chunk >= policy.low - 1e-6).all() and (chunk <= policy.high + 1e-6).all()
    assert policy.cameras == list(CAMERAS) and policy.robot == "widowx" and policy.chunk_size == 5


def test_step_is_deterministic_and_depends_on_input(policy):
    a = policy.step(fake_images(0), "put the carrot on the plate")
    b = policy.step(fake_images(0), "put the carrot on the plate")
    c = policy.step(fake_images(1), "put the carrot on the plate")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_extra_cameras_are_ignored(policy):
    images = fake_images(0)
    images["side"] = np.zeros((8, 8, 3), np.uint8)
    np.testing.assert_array_equal(policy.step(images, "stack the cube"), policy.step(fake_images(0), "stack the cube"))


@pytest.mark.parametrize(
    "images,instruction,match",
    [
        ({"third_person": np.zeros((32, 32, 3), np.uint8)}, "stack the cube", "wrist"),
        (fake_images(0), "", "empty"),
        (fake_images(0), "   ", "empty"),
        (fake_images(0), "put " * 200, "too long"),
        ({c: np.zeros((32, 32, 3), np.float32) for c in CAMERAS}, "stack", "uint8"),
        ({c: np.zeros((32, 32), np.uint8) for c in CAMERAS}, "stack", "uint8"),
        (fake_images(0), None, "str"),
        ([np.zeros((32, 32, 3), np.uint8)], "stack", "dict"),
    ],
)
def test_bad_input_is_a_clear_value_error(policy, images, instruction, match):
    with pytest.raises(ValueError, match=match):
        policy.step(images, instruction)


def test_checkpoint_for_another_robot_or_action_dim_is_refused(checkpoint):
    with pytest.raises(ValueError, match="piper"):
        Policy.load(checkpoint, robot="piper")
    with pytest.raises(ValueError, match="6-D"):
        Policy.load(checkpoint, action_dim=6)
    with pytest.raises(FileNotFoundError):
        Policy.load(checkpoint / "nope")


def test_stage1_checkpoint_is_refused(tmp_path):
    from models.vla import VLA, VLAConfig

    VLA.create(VLAConfig(cameras=list(CAMERAS), stage="latent")).save(tmp_path / "s1")
    with pytest.raises(ValueError, match="finetune"):
        Policy.load(tmp_path / "s1")


def test_nan_output_is_never_passed_on(checkpoint, monkeypatch):
    policy = Policy.load(checkpoint)
    monkeypatch.setattr(policy.model.action_decoder, "forward", lambda v, lat, state=None: torch.full((1, 5, 7), float("nan")))
    with pytest.raises(NonFiniteActionError):
        policy.step(fake_images(0), "stack the cube")
    with pytest.raises(NonFiniteActionError):
        policy.act(fake_images(0), "stack the cube")


def test_out_of_range_output_is_clipped_to_data_range(checkpoint, monkeypatch):
    policy = Policy.load(checkpoint)
    monkeypatch.setattr(policy.model.action_decoder, "forward", lambda v, lat, state=None: torch.full((1, 5, 7), 1e6))
    chunk = policy.step(fake_images(0), "stack the cube")
    np.testing.assert_allclose(chunk, np.broadcast_to(policy.high, chunk.shape), rtol=1e-6)


def test_act_executes_chunks_and_reset(policy):
    policy.reset()
    actions = [policy.act(fake_images(i), "put the spoon on the towel") for i in range(7)]
    assert all(a.shape == (7,) and np.isfinite(a).all() for a in actions)
    assert all(a[6] in (policy.low[6], policy.high[6]) for a in actions)  # gripper binarised
    assert policy._t == 7
    policy.reset()
    assert policy._t == 0 and policy.last_chunk is None


def test_ensembler_constant_plan_is_reproduced_exactly():
    ens = ChunkEnsembler(5, 2, decay=0.1)
    chunk = np.tile([0.3, -0.2], (5, 1))
    for t in range(8):
        ens.add(chunk, t)
        np.testing.assert_allclose(ens.action(t), [0.3, -0.2])


def test_no_jump_when_a_new_chunk_arrives():
    """Executing a chunk of zeros, then the plan changes to ones: naive splicing
    jumps by 1.0; the ensemble moves by a fraction and converges to the new plan."""
    ens = ChunkEnsembler(5, 1, decay=0.1)
    executed = []
    for t in range(12):
        plan = 0.0 if t < 3 else 1.0
        ens.add(np.full((5, 1), plan), t)
        executed.append(float(ens.action(t)[0]))
    steps = np.abs(np.diff(executed))
    assert executed[:3] == [0.0, 0.0, 0.0]
    assert steps.max() < 0.5  # naive replacement would step by 1.0
    assert executed[-1] == pytest.approx(1.0)  # old chunks expire: converges to the new plan
    assert all(b >= a for a, b in zip(executed, executed[1:]))  # monotone, no overshoot


def test_ensembler_bad_chunk_and_gap():
    ens = ChunkEnsembler(3, 2)
    with pytest.raises(ValueError, match="chunk"):
        ens.add(np.zeros((3, 5)), 0)
    ens.add(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="covers"):
        ens.action(10)
