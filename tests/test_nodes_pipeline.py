"""The ROS-free in-process pipeline (`lam-ros run --sim`) against the real simulator."""

import numpy as np
import pytest

from lam_ros.pipeline import run_sim
from lam_ros.safety import SafetyConfig, SafetyLayer


class DownPolicy:
    """Moves 1 cm down per step and closes the gripper: same act() contract as Policy."""

    cameras = ["third_person"]

    def act(self, images, instruction):
        assert images["third_person"].shape == (64, 64, 3) and instruction
        return np.array([0.0, 0.0, -0.01, 0.0, 0.0, 0.0, 0.0])


class CountingLAM:
    def __init__(self):
        self.pairs = 0

    def infer(self, frames_t, frames_tk):
        self.pairs += 1
        return np.zeros((1, 4), np.int64), np.zeros((1, 4, 8), np.float32)


@pytest.fixture(scope="module")
def env():
    sim = pytest.importorskip("sim")
    e = sim.make_env(robot="widowx", task="carrot_on_plate", cameras=("third_person",), image_size=(64, 64))
    yield e
    e.close()


def test_pipeline_moves_the_sim_through_the_safety_layer(env):
    safety = SafetyLayer(SafetyConfig(*[(0.12, -0.32, 0.005), (0.50, 0.32, 0.42)], dry_run=False))
    z = []
    lam = CountingLAM()
    summary = run_sim(env, DownPolicy(), safety, max_steps=4, latent_model=lam, frame_gap_s=0.4,
                      on_step=lambda r, obs, info: z.append(obs["ee_pose"][2]))
    d = summary.to_dict()
    assert d["steps"] == 4 and d["commands_sent"] == 4 and not d["blocked_reasons"]
    assert z[-1] < z[0] - 0.02  # the arm went down
    assert lam.pairs == d["latent_pairs"] == 2  # steps 2 and 3 have a partner 0.4 s earlier
    assert d["latency_p99_ms"] >= d["latency_p50_ms"] > 0


def test_pipeline_dry_run_never_moves_the_arm(env):
    safety = SafetyLayer(SafetyConfig(*[(0.12, -0.32, 0.005), (0.50, 0.32, 0.42)]))  # dry run by default
    summary = run_sim(env, DownPolicy(), safety, max_steps=2)
    assert summary.sent == 0 and summary.blocked == {"dry_run": 2}
