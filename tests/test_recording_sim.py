"""record-sim: simulator episodes into LeRobot, the stored action is the clamped one actually applied."""

import numpy as np
import pytest

from lam_ros.recording.sim import record_sim
from lam_ros.recording.writer import load_dataset

pytest.importorskip("mujoco")


def test_policy_rollout_stores_applied_not_requested_action(tmp_path):
    import sim

    requested = np.array([0.5, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0])  # far beyond the controller's per-step clamp
    report = record_sim(tmp_path / "ds", cameras=("third_person", "wrist"), image_size=(64, 64), episodes=1,
                        max_steps=4, policy=lambda obs: requested, seed=3, progress=False)
    assert report.to_dict()["frames"] == 4
    ds = load_dataset(tmp_path / "ds")
    assert ds.num_episodes == 1 and len(ds) == 4 and ds.meta.robot_type == "widowx"

    env = sim.make_env(cameras=("third_person", "wrist"), image_size=(64, 64))  # same seed: same rollout
    obs, info = env.reset(seed=3)
    for k in range(4):
        item = ds[k]
        next_obs, _, _, _, info = env.step(requested)
        np.testing.assert_allclose(item["action"].numpy(), info["applied_action"], atol=1e-6)
        assert not np.allclose(item["action"].numpy(), requested)
        np.testing.assert_allclose(item["observation.state"].numpy(), env.state_vector(obs), atol=1e-5)
        got = item["observation.images.wrist"].numpy().transpose(1, 2, 0) * 255
        assert np.abs(got - obs["images"]["wrist"]).mean() < 8
        assert item["sync.skew"].item() == 0.0
        obs = next_obs
    assert ds[0]["task"] == env.instruction
    env.close()
