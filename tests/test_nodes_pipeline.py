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


class ImageLogPolicy:
    """Records the mean of each image it is given (episodes render different scenes)."""

    cameras = ["third_person"]

    def __init__(self):
        self.seen = []

    def act(self, images, instruction, **_):
        self.seen.append(float(images["third_person"].mean()))
        return np.zeros(7)


def test_run_sim_starts_every_episode_on_its_own_images(env):
    """Regression: run_sim kept the controller across env.reset, and sim time restarting at 0
    made every later frame 'older' than the first episode's last one, which was reused."""
    policy = ImageLogPolicy()
    safety = SafetyLayer(SafetyConfig.for_robot("widowx", dry_run=False))
    run_sim(env, policy, safety, episodes=2, max_steps=2, seed=3)
    firsts = policy.seen[0], policy.seen[2]
    obs0, _ = env.reset(seed=3)
    obs1, _ = env.reset(seed=4)
    assert firsts == pytest.approx((float(obs0["images"]["third_person"].mean()),
                                    float(obs1["images"]["third_person"].mean())))


def test_controller_refuses_future_frames_and_stale_policy_output():
    from lam_ros.pipeline import PolicyController

    now = [100.0]
    safety = SafetyLayer(SafetyConfig(dry_run=False))
    ctl = PolicyController(ImageLogPolicy(), safety, ["third_person"], "go", clock=lambda: now[0])
    img = np.zeros((8, 8, 3), np.uint8)
    ctl.on_image("third_person", 130.0, img)  # 30 s in the future: refused, input not frozen
    assert "third_person" not in ctl._frames and safety.counts["future_stamped"] == 1
    ctl.on_image("third_person", 99.95, img)
    ctl.on_state([0.3, 0, 0.2, 0, 1.2, 0], 99.95)
    assert ctl.tick().sent
    # the policy output is as old as its frames: fresh cameras but frames 0.25 s old -> stale
    ctl.on_image("third_person", 99.75, img)  # the latest arrival counts (a camera clock jumped back)
    now[0] = 100.0
    r = ctl.tick()
    assert not r.sent and "policy" in r.decision.reason and "third_person" in r.decision.reason
