"""recorder_node against the rclpy double, with a fake LiveRecorder (same method names).

Why the double: the service/state-machine edge cases (start twice, stop without start, discard)
are checked call by call without DDS timing. The real node, real services and a SIGKILL
mid-episode over Fast DDS are in tests/test_ros_graph.py."""

import numpy as np
import pytest

import rclpy_double


class FakeRecorder:
    def __init__(self):
        self.calls = []
        self.states = []

    def start_episode(self, task):
        self.calls.append(("start", task))

    def stop_episode(self):
        self.calls.append(("stop",))
        return 0

    def discard_episode(self):
        self.calls.append(("discard",))

    def add_image(self, camera, stamp, image):
        self.calls.append(("image", camera, round(stamp, 3), image.shape, image.dtype))

    def add_state(self, stamp, state):
        self.calls.append(("state", round(stamp, 3), state.shape))
        self.states.append(state)

    def add_action(self, stamp, action):
        self.calls.append(("action", round(stamp, 3), action.tolist()))


@pytest.fixture
def ros(monkeypatch):
    return rclpy_double.install(monkeypatch)


def test_records_only_between_start_and_stop(ros):
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32, String

    from lam_ros.nodes.recorder_node import RecorderNode
    from lam_ros.ros_conversions import fill_image, fill_pose_stamped

    rec = FakeRecorder()
    node = RecorderNode(recorder=rec)
    assert node.subscriptions["/side/image_raw"].qos.reliability == ReliabilityPolicy.BEST_EFFORT
    img = fill_image(Image(), np.zeros((4, 5, 3), np.uint8), 10.0, "side")
    ros.deliver("/side/image_raw", img, qos=qos_profile_sensor_data)
    assert rec.calls == []  # not recording yet
    resp = node.services["/recorder_node/start_episode"].call()
    assert not resp.success and "instruction" in resp.message  # no task yet
    ros.deliver("/instruction", String(data="stack the cube"))
    assert node.services["/recorder_node/start_episode"].call().success
    ros.deliver("/side/image_raw", img, qos=qos_profile_sensor_data)
    ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), [0.3, 0, 0.2, 0, 0, 0], 10.0))
    ros.deliver("/gripper_command", Float32(data=0.0))
    ros.deliver("/ee_command", fill_pose_stamped(PoseStamped(), [0.31, 0, 0.2, 0, 0, 0], 10.0))
    assert node.services["/recorder_node/stop_episode"].call().success
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["start", "image", "state", "action", "stop"]
    assert rec.calls[0] == ("start", "stack the cube")
    assert rec.calls[1][1:] == ("side", 10.0, (4, 5, 3), np.uint8)
    assert rec.calls[3][2] == pytest.approx([0.31, 0, 0.2, 0, 0, 0, 0.0])


def test_shutdown_while_recording_saves_the_episode(ros):
    from rclpy.parameter import Parameter

    from lam_ros.nodes.recorder_node import RecorderNode

    rec = FakeRecorder()
    node = RecorderNode(recorder=rec, parameter_overrides=[Parameter("task", value="t")])
    node.services["/recorder_node/start_episode"].call()
    node.destroy_node()
    assert rec.calls[-1] == ("stop",)


def test_state_gripper_is_the_opening_of_the_robots_finger_joint(ros):
    """A driver's joint state carries finger positions in m (and, on Interbotix, a "gripper" motor angle in rad):
    the recorded state's gripper is the opening 1 open .. 0 closed, as the simulator's data and the policy use."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from lam_ros.nodes.recorder_node import RecorderNode
    from lam_ros.ros_conversions import fill_joint_state, fill_pose_stamped
    from sim.robots import get_robot

    piper = get_robot("piper")
    rec = FakeRecorder()
    node = RecorderNode(recorder=rec, parameter_overrides=[Parameter("task", value="t"), Parameter("robot", value="piper")])
    node.services["/recorder_node/start_episode"].call()
    finger = piper.finger_position(0.37)
    names = list(piper.arm_joints) + ["gripper", *piper.finger_joints]
    ros.deliver("/joint_states", fill_joint_state(JointState(), names, [0.0] * 6 + [2.0, finger, finger], 10.0))
    ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), [0.3, 0, 0.2, 0, 0, 0], 10.0))
    assert rec.states[-1][6] == pytest.approx(0.37)
    # a joint state without the finger joint keeps the last opening
    ros.deliver("/joint_states", fill_joint_state(JointState(), list(piper.arm_joints), [0.0] * 6, 10.1))
    ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), [0.3, 0, 0.2, 0, 0, 0], 10.1))
    assert rec.states[-1][6] == pytest.approx(0.37)


def test_unknown_robot_is_refused_by_name(ros):
    from rclpy.parameter import Parameter

    from lam_ros.nodes.recorder_node import RecorderNode

    with pytest.raises(ValueError, match="unknown robot 'ur5'.*widowx"):
        RecorderNode(recorder=FakeRecorder(), parameter_overrides=[Parameter("robot", value="ur5")])
