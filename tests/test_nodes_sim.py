"""sim_node against the rclpy double, alone and in a closed loop with policy_node.

Why the double: a fake env and a manual clock make every tick's published images, state and
stamps exact and checkable; the real sim_node + policy_node + latent_action_node processes
over Fast DDS are in tests/test_ros_graph.py."""

import numpy as np
import pytest

import rclpy_double


class FakeEnv:
    """Stands in for sim.make_env(): the arm reaches every absolute target at once."""

    cameras = ("third_person", "wrist")
    instruction = "put the carrot on the plate"

    def __init__(self, max_steps=100):
        self.max_steps = max_steps
        self.steps = []

    def _obs(self):
        return {
            "images": {c: np.full((8, 10, 3), 50, np.uint8) for c in self.cameras},
            "ee_pose": self.pose.copy(),
            "gripper": np.array([self.gripper]),
            "joint_pos": np.zeros(6),
        }

    def reset(self, seed=None):
        self.pose, self.gripper, self.n = np.array([0.3, 0.0, 0.2, 0.0, 0.5, 0.0]), 1.0, 0
        return self._obs(), {}

    def step_absolute(self, pose6, gripper):
        self.steps.append((np.asarray(pose6).copy(), gripper))
        self.pose, self.gripper = np.asarray(pose6, dtype=np.float64).copy(), float(gripper)
        self.n += 1
        return self._obs(), 0.0, False, self.n >= self.max_steps, {"success": False}


@pytest.fixture
def ros(monkeypatch):
    return rclpy_double.install(monkeypatch)


def test_sim_node_publishes_robot_topics(ros):
    from rclpy.qos import ReliabilityPolicy

    from lam_ros.nodes.sim_node import SimNode
    from lam_ros.ros_conversions import pose_stamped_to_pose6

    node = SimNode(env=FakeEnv())
    assert node.publishers["/wrist/image_raw"].qos.reliability == ReliabilityPolicy.BEST_EFFORT
    node.timer.fire()
    node.settle()  # the step runs on the simulator thread
    node.camera_timer.fire()  # cameras publish on their own timer (camera_hz, 30 Hz)
    assert node.camera_timer.period_s == pytest.approx(1 / 30) and node.timer.period_s == pytest.approx(0.2)
    img = node.publishers["/third_person/image_raw"].msgs[-1]
    assert (img.height, img.width, img.encoding, img.step) == (8, 10, "rgb8", 30)
    assert img.header.frame_id == "third_person"
    js = node.publishers["/joint_states"].msgs[-1]
    # the arm joints and both finger joints (m), as the drivers publish them; the opening reads back through the spec
    assert list(js.name)[:2] == ["waist", "shoulder"] and list(js.name)[-2:] == ["left_finger", "right_finger"]
    from sim.robots import get_robot

    widowx = get_robot("widowx")
    assert list(js.position)[-1] == pytest.approx(widowx.finger_range[1])  # FakeEnv starts open
    assert widowx.opening_from_joint_state(js.name, js.position) == pytest.approx(1.0)
    pose6, _, frame = pose_stamped_to_pose6(node.publishers["/ee_pose"].msgs[-1])
    np.testing.assert_allclose(pose6, [0.3, 0.0, 0.2, 0.0, 0.5, 0.0], atol=1e-9)
    assert node.publishers["/instruction"].msgs[-1].data == FakeEnv.instruction


def test_sim_node_holds_without_commands_and_resets_at_episode_end(ros):
    from lam_ros.nodes.sim_node import SimNode

    env = FakeEnv(max_steps=2)
    node = SimNode(env=env)
    node.timer.fire()
    node.settle()
    np.testing.assert_allclose(env.steps[0][0], [0.3, 0.0, 0.2, 0.0, 0.5, 0.0])
    node.timer.fire()
    node.settle()
    assert node.episodes == 2
    assert node.services["/sim_node/reset"].call().success and node.episodes == 3


def test_closed_loop_policy_drives_the_sim(ros):
    from rclpy.parameter import Parameter

    from lam_ros.nodes.policy_node import PolicyNode
    from lam_ros.nodes.sim_node import SimNode

    class StepPolicy:
        cameras = ["third_person", "wrist"]

        def act(self, images, instruction):
            assert instruction == FakeEnv.instruction
            return np.array([0.01, 0.0, -0.01, 0.0, 0.0, 0.0, 0.0])

    env = FakeEnv()
    sim_node = SimNode(env=env)
    policy_node = PolicyNode(policy=StepPolicy(), parameter_overrides=[
        Parameter("dry_run", value=False), Parameter("publish_driver", value=False),
        Parameter("ee_pose_topic", value="ee_pose"), Parameter("joint_states_topic", value="joint_states")])
    for _ in range(3):
        sim_node.timer.fire()  # physics + state topics, on the simulator thread
        sim_node.settle()
        sim_node.camera_timer.fire()  # camera topics
        policy_node.timer.fire()  # policy -> safety -> ee_command -> sim subscription
        ros.clock.advance(0.2)
    sim_node.timer.fire()
    sim_node.settle()
    # the sim applied the policy's commands: 3 steps of +1 cm x, -1 cm z, gripper closing
    np.testing.assert_allclose(env.pose[:3], [0.33, 0.0, 0.17], atol=1e-9)
    assert env.gripper == 0.0


def test_a_slow_control_step_runs_beside_the_camera_timer_and_overruns_skip_ticks(ros):
    """The control timer hands the step to the simulator thread: while a step is in flight the
    camera timer still publishes (the last complete observation), and further control ticks are
    skipped and counted, not queued."""
    import threading

    from lam_ros.nodes.sim_node import SimNode

    class SlowEnv(FakeEnv):
        def __init__(self):
            super().__init__()
            self.release, self.started = threading.Event(), threading.Event()

        def step_absolute(self, pose6, gripper):
            self.started.set()
            assert self.release.wait(10), "the test never released the step"
            return super().step_absolute(pose6, gripper)

    env = SlowEnv()
    node = SimNode(env=env)
    node.timer.fire()  # returns at once; the step waits on the simulator thread
    assert env.started.wait(10)
    before = len(node.publishers["/third_person/image_raw"].msgs)
    node.camera_timer.fire()
    assert len(node.publishers["/third_person/image_raw"].msgs) == before + 1
    node.timer.fire()
    node.timer.fire()
    assert node.overruns == 2 and node.steps == 0
    env.release.set()
    node.settle(10)
    assert node.steps == 1 and len(env.steps) == 1
    node.timer.fire()
    node.settle(10)
    assert node.steps == 2


def test_a_failing_control_step_is_raised_on_the_next_tick(ros):
    from lam_ros.nodes.sim_node import SimNode

    class BrokenEnv(FakeEnv):
        def step_absolute(self, pose6, gripper):
            raise RuntimeError("mujoco: simulation unstable")

    node = SimNode(env=BrokenEnv())
    node.timer.fire()
    with pytest.raises(RuntimeError, match="unstable"):
        node.settle(10)  # waits for the step
    with pytest.raises(RuntimeError, match="unstable"):
        node.timer.fire()  # in the node: the executor's spin ends with the simulator's error
