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
    safety = SafetyLayer(SafetyConfig.for_robot("widowx", dry_run=False))
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
    safety = SafetyLayer(SafetyConfig.for_robot("widowx"))  # dry run by default
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


def test_a_command_the_arm_cannot_reach_counts_as_blocked_not_sent():
    """The safety layer passes it, the adapter's IK finds no joints: nothing leaves, and the counters say so."""
    from lam_ros.adapters import UnreachableCommand
    from lam_ros.pipeline import PolicyController

    class NoIK:
        def publications(self, command, joints):
            raise UnreachableCommand("no solution within the joint limits")

    now = [100.0]
    safety = SafetyLayer(SafetyConfig(dry_run=False))
    ctl = PolicyController(ImageLogPolicy(), safety, ["third_person"], "go", adapter=NoIK(), clock=lambda: now[0])
    ctl.on_image("third_person", 99.95, np.zeros((8, 8, 3), np.uint8))
    ctl.on_state([0.3, 0, 0.2, 0, 1.2, 0], 99.95)
    warnings = []
    safety.log = type("Log", (), {"warning": lambda self, msg: warnings.append(msg)})()
    r = ctl.tick()
    assert not r.sent and "adapter refused: no solution" in r.decision.reason
    assert safety.counts["sent"] == 0 and safety.counts["blocked"] == 1
    ctl.on_state([0.3, 0, 0.2, 0, 1.2, 0], 99.96)
    assert not ctl.tick().sent and safety.counts["blocked"] == 2
    assert len(warnings) == 1 and "NOT sent" in warnings[0]  # the same reason again is throttled, not logged per tick


def test_reset_after_an_estop_starts_from_the_measured_pose_and_a_fresh_policy():
    from lam_ros.pipeline import PolicyController

    class ResettablePolicy(ImageLogPolicy):
        resets = 0

        def reset(self):
            self.resets += 1

        def act(self, images, instruction, **_):
            super().act(images, instruction)
            return np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])

    now = [100.0]
    policy, safety = ResettablePolicy(), SafetyLayer(SafetyConfig(dry_run=False))
    ctl = PolicyController(policy, safety, ["third_person"], "go", clock=lambda: now[0])
    ctl.on_image("third_person", 99.95, np.zeros((8, 8, 3), np.uint8))
    ctl.on_state([0.3, 0, 0.2, 0, 1.2, 0], 99.95)
    assert ctl.tick().sent and ctl.applier._target is not None  # the next delta would start from this target
    safety.estop("test")
    assert not ctl.tick().sent
    ctl.reset_estop()
    assert not safety.estop_latch.engaged and ctl.applier._target is None and policy.resets == 1
    assert ctl.tick().sent


def test_a_late_camera_frame_keeps_the_latent_history_and_a_clock_jump_back_clears_it():
    """The synchroniser keeps older unmatched frames, so a late frame can complete an older set after a newer one:
    that set joins the history in time order (it was wiping it, as if the simulator had reset), while time going back
    past everything kept (a reset) still starts over."""
    from lam_ros.pipeline import LatentActionStream

    lam = CountingLAM()
    stream = LatentActionStream(lam, ["a", "b"], frame_gap_s=0.6)
    img = np.zeros((4, 4, 3), np.uint8)
    for t in (0.2, 0.4, 0.6, 0.8):
        stream.add("a", t, img)
        stream.add("b", t, img)
    stream.add("a", 1.0, img)  # b's 1.0 frame is late
    stream.add("a", 1.2, img)
    assert stream.add("b", 1.2, img) is not None  # the set at 1.2 pairs with 0.6
    stream.add("b", 1.0, img)  # completes the older set at 1.0
    assert stream.stats["late"] == 1 and [h[0] for h in stream._history] == [0.6, 0.8, 1.0, 1.2]
    stream.add("a", 1.4, img)
    result = stream.add("b", 1.4, img)
    assert result is not None and result.stamp_prev == pytest.approx(0.8)
    stream.add("a", 0.0, img)  # a simulator reset: the clock restarts
    assert stream.add("b", 0.0, img) is None and [h[0] for h in stream._history] == [0.0]
