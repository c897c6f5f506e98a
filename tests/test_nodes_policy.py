"""policy_node against the rclpy test double: topics, QoS, message contents, safety.

Why the double here (and not only the real graph): these tests step the node tick by tick
on a manual clock (``ros.clock.advance``, ``timer.fire()``), which a real graph's wall-clock
timers cannot do deterministically, and inspect exactly which message each tick published.
The same behaviours on real rclpy + Fast DDS, multi-process, are in tests/test_ros_graph.py
(stale camera, e-stop + reset service, NaN, QoS, parameters)."""

import math

import numpy as np
import pytest

import rclpy_double

POSE = np.array([0.30, 0.0, 0.20, 0.0, 0.5, 0.0])
ACTION = np.array([0.01, -0.02, 0.0, 0.0, 0.0, 0.1, 1.0])


class FakePolicy:
    """Stands in for lam_ros.policy.Policy: same act() contract, a fixed action."""

    cameras = ["third_person", "wrist"]

    def __init__(self, action=ACTION):
        self.action = np.asarray(action, dtype=np.float32)
        self.calls = []

    def act(self, images, instruction):
        assert set(images) == set(self.cameras)
        for img in images.values():
            assert img.dtype == np.uint8 and img.shape == (8, 10, 3)
        self.calls.append(instruction)
        return self.action.copy()


def fake_ik(pose6, seed):
    return np.array([pose6[1], pose6[0] - 0.3, pose6[2] - 0.2, 0.0, 0.1, 0.0])


@pytest.fixture
def ros(monkeypatch):
    return rclpy_double.install(monkeypatch)


def make_node(ros, policy=None, **params):
    from rclpy.parameter import Parameter

    from lam_ros.adapters import WidowXAdapter
    from lam_ros.nodes.policy_node import PolicyNode

    params.setdefault("instruction", "put the carrot on the plate")
    # the simulator's state topics (the defaults, "auto", are the real driver's)
    params.setdefault("ee_pose_topic", "ee_pose")
    params.setdefault("joint_states_topic", "joint_states")
    params.setdefault("ee_pose_type", "PoseStamped")
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return PolicyNode(policy=policy or FakePolicy(), adapter=WidowXAdapter(ik=fake_ik), parameter_overrides=overrides)


def feed(ros, t=None):
    """Camera frames and the EE pose stamped 'now'."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from lam_ros.ros_conversions import fill_image, fill_pose_stamped

    t = ros.clock.t_ns * 1e-9 if t is None else t
    img = np.full((8, 10, 3), 100, np.uint8)
    for cam in FakePolicy.cameras:
        n = ros.deliver(f"/{cam}/image_raw", fill_image(Image(), img, t, cam), qos=qos_profile_sensor_data)
        assert n == 1
    ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), POSE, t))
    from sensor_msgs.msg import JointState

    from lam_ros.ros_conversions import fill_joint_state

    ros.deliver("/joint_states", fill_joint_state(JointState(), JOINTS, np.zeros(7), t))  # the IK seed


JOINTS = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper"]


def test_topics_qos_and_services(ros):
    from rclpy.qos import ReliabilityPolicy

    from lam_ros.nodes._common import DEFAULT_CAMERA_QUEUE_DEPTH

    node = make_node(ros)
    subs = node.subscriptions
    for cam in FakePolicy.cameras:
        assert subs[f"/{cam}/image_raw"].qos.reliability == ReliabilityPolicy.BEST_EFFORT
        assert subs[f"/{cam}/image_raw"].qos.depth == DEFAULT_CAMERA_QUEUE_DEPTH
    for topic in ("/ee_pose", "/joint_states", "/instruction", "/estop"):
        assert topic in subs
    for topic in ("/ee_command", "/gripper_command", "/policy_node/dry_run_command", "/diagnostics",
                  "/wx250s/commands/joint_group", "/wx250s/commands/joint_single"):
        assert topic in node.publishers
    assert "/policy_node/reset_estop" in node.services
    assert node.timers[0].period_s == pytest.approx(0.2)  # control_hz 5
    # every parameter carries a description
    assert all(p.descriptor.description for p in node._parameters.values())


def test_dry_run_by_default_computes_but_sends_nothing(ros):
    node = make_node(ros)
    feed(ros)
    node.timers[0].fire()
    assert node.publishers["/ee_command"].msgs == []
    assert node.publishers["/wx250s/commands/joint_group"].msgs == []
    [dry] = node.publishers["/policy_node/dry_run_command"].msgs
    assert dry.pose.position.x == pytest.approx(POSE[0] + ACTION[0])
    assert "DRY RUN" in ros.log_text("INFO")


def test_sends_checked_command_when_motion_enabled(ros):
    node = make_node(ros, dry_run=False)
    feed(ros)
    node.timers[0].fire()
    [cmd] = node.publishers["/ee_command"].msgs
    assert cmd.header.frame_id == "base_link"
    p = cmd.pose.position
    assert (p.x, p.y, p.z) == pytest.approx(tuple(POSE[:3] + ACTION[:3]))
    q = cmd.pose.orientation
    assert math.isclose(q.x**2 + q.y**2 + q.z**2 + q.w**2, 1.0, rel_tol=1e-9)
    [grip] = node.publishers["/gripper_command"].msgs
    assert grip.data == 1.0
    [arm] = node.publishers["/wx250s/commands/joint_group"].msgs
    assert arm.name == "arm" and len(arm.cmd) == 6
    [g] = node.publishers["/wx250s/commands/joint_single"].msgs
    assert g.name == "gripper"


def test_runtime_parameter_enables_motion(ros):
    from rclpy.parameter import Parameter

    node = make_node(ros)
    feed(ros)
    node.set_parameters([Parameter("dry_run", value=False)])
    node.timers[0].fire()
    assert len(node.publishers["/ee_command"].msgs) == 1


def test_watchdog_stale_camera_stops_commands(ros):
    node = make_node(ros, dry_run=False)
    feed(ros)
    ros.clock.advance(0.3)  # no new frames for 300 ms > 200 ms
    node.timers[0].fire()
    assert node.publishers["/ee_command"].msgs == []
    assert "stale" in ros.log_text("WARN")


def test_estop_latches_until_reset_service(ros):
    from std_msgs.msg import Bool

    node = make_node(ros, dry_run=False)
    ros.deliver("/estop", Bool(data=True))
    ros.deliver("/estop", Bool(data=False))  # releasing the button does not reset the latch
    feed(ros)
    node.timers[0].fire()
    assert node.publishers["/ee_command"].msgs == []
    assert node.services["/policy_node/reset_estop"].call().success
    node.timers[0].fire()
    assert len(node.publishers["/ee_command"].msgs) == 1


def test_nan_action_never_leaves(ros):
    bad = ACTION.copy()
    bad[2] = np.nan
    node = make_node(ros, policy=FakePolicy(bad), dry_run=False)
    feed(ros)
    node.timers[0].fire()
    for topic in ("/ee_command", "/gripper_command", "/wx250s/commands/joint_group"):
        assert node.publishers[topic].msgs == []
    assert "non-finite" in ros.log_text("WARN") or "NaN" in ros.log_text("WARN")


def test_large_action_is_clamped_before_it_leaves(ros):
    node = make_node(ros, policy=FakePolicy([0.5, 0, 0, 0, 0, 0, 1]), dry_run=False)
    feed(ros)
    node.timers[0].fire()
    [cmd] = node.publishers["/ee_command"].msgs
    assert cmd.pose.position.x == pytest.approx(POSE[0] + 0.05)  # max_step_translation_m


def test_instruction_topic_and_waiting_without_it(ros):
    from std_msgs.msg import String

    policy = FakePolicy()
    node = make_node(ros, policy=policy, instruction="", dry_run=False)
    feed(ros)
    node.timers[0].fire()
    assert policy.calls == [] and "no instruction" in ros.log_text("WARN")
    ros.deliver("/instruction", String(data="stack the cube"))
    node.timers[0].fire()
    assert policy.calls == ["stack the cube"]


def test_reliable_camera_qos_does_not_match_best_effort_cameras(ros):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    make_node(ros, camera_qos="reliable")
    assert ros.deliver("/wrist/image_raw", Image(), qos=qos_profile_sensor_data) == 0


def test_camera_queue_depth_is_a_parameter_and_nonsense_is_refused(ros):
    node = make_node(ros, camera_queue_depth=12)
    assert node.subscriptions["/wrist/image_raw"].qos.depth == 12
    with pytest.raises(ValueError, match="camera_queue_depth must be a positive integer, got 0"):
        make_node(ros, camera_queue_depth=0)


def test_compressed_transport_and_custom_topics(ros):
    node = make_node(ros, image_transport="compressed", camera_topics="/cam0/compressed,/cam1/compressed")
    assert node.subscriptions["/cam0/compressed"].msg_type.__name__ == "CompressedImage"


def test_diagnostics_published_once_a_second(ros):
    node = make_node(ros)
    feed(ros)
    for _ in range(5):
        node.timers[0].fire()
    [diag] = node.publishers["/diagnostics"].msgs
    assert diag.status[0].level == b"\x01" and "dry_run" in diag.status[0].message


def test_missing_vendor_package_is_fatal_only_when_moving(monkeypatch):
    ros = rclpy_double.install(monkeypatch, vendor=False)
    from rclpy.parameter import Parameter

    from lam_ros.adapters import MissingVendorPackage
    from lam_ros.nodes.policy_node import PolicyNode

    node = PolicyNode(policy=FakePolicy(), parameter_overrides=[Parameter("robot", value="piper")])
    assert "driver output disabled" in ros.log_text("WARN")
    assert "/pos_cmd" not in node.publishers
    with pytest.raises(MissingVendorPackage, match="piper_msgs"):
        PolicyNode(policy=FakePolicy(), parameter_overrides=[Parameter("robot", value="piper"),
                                                             Parameter("dry_run", value=False)])


def test_main_reports_missing_checkpoint(ros, capsys):
    from lam_ros.nodes import policy_node

    assert policy_node.main([]) == 2
    assert "checkpoint is required" in capsys.readouterr().err


def test_input_threads_must_be_one_or_two(ros):
    """A bad executor-thread count is refused with a message naming it, not silently clamped."""
    for bad in (0, 3):
        with pytest.raises(ValueError, match="input_threads must be 1 or 2"):
            make_node(ros, input_threads=bad)
    assert make_node(ros, input_threads=1) is not None


def test_measured_gripper_comes_from_the_finger_joint_as_sim_node_and_the_drivers_publish_it(ros):
    """The policy's state gripper is the measured opening, not the last command: sim_node publishes the finger
    joints (m) as the drivers do, and a "gripper" entry (Interbotix: a motor angle in rad) is not the opening."""
    from sensor_msgs.msg import JointState

    from lam_ros.ros_conversions import fill_joint_state
    from sim.robots import get_robot

    node = make_node(ros)
    widowx = get_robot("widowx")
    ros.deliver("/joint_states", fill_joint_state(JointState(), JOINTS, np.zeros(7), 0.0))
    node._take_inputs()  # what every control tick does first
    assert node.controller.gripper is None  # no finger joint: the state falls back to the last command
    finger = widowx.finger_position(0.37)
    names = JOINTS + list(widowx.finger_joints)
    ros.deliver("/joint_states", fill_joint_state(JointState(), names, [0.0] * 6 + [2.0, finger, finger], 0.0))
    node._take_inputs()
    assert node.controller.gripper == pytest.approx(0.37)


def test_stale_joint_states_stop_commands_when_the_ee_pose_has_its_own_topic(ros):
    """The WidowX IK is seeded with the measured joints. With the EE pose on a separate topic (the simulator's
    setup), a fresh pose must not carry a joint seed from before the joint states stopped."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from lam_ros.ros_conversions import fill_image, fill_pose_stamped

    node = make_node(ros, dry_run=False)
    feed(ros)
    node.timers[0].fire()
    assert len(node.publishers["/wx250s/commands/joint_group"].msgs) == 1
    ros.clock.advance(0.3)  # cameras and EE pose keep coming; the joint states stopped 300 ms ago (> 200 ms)
    t = ros.clock.t_ns * 1e-9
    for cam in FakePolicy.cameras:
        ros.deliver(f"/{cam}/image_raw", fill_image(Image(), np.full((8, 10, 3), 100, np.uint8), t, cam),
                    qos=qos_profile_sensor_data)
    ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), POSE, t))
    node.timers[0].fire()
    assert len(node.publishers["/wx250s/commands/joint_group"].msgs) == 1  # nothing new was sent
    assert "joints" in ros.log_text("WARN")
    feed(ros)  # joint states again: commands resume
    node.timers[0].fire()
    assert len(node.publishers["/wx250s/commands/joint_group"].msgs) == 2
