"""Robot adapters: Piper units, WidowX IK -> JointGroupCommand, lazy vendor imports."""

import math

import numpy as np
import pytest

import rclpy_double
from lam_ros.adapters import EECommand, MissingVendorPackage, PiperAdapter, UnreachableCommand, WidowXAdapter, make_adapter
from lam_ros.adapters.widowx import JOINT_LIMITS

CMD = EECommand([0.3, -0.1, 0.2], [0.1, math.pi / 2, -0.5], gripper=0.5)


def test_piper_fields_in_metres_and_radians():
    f = PiperAdapter(units="m_rad").fields(CMD)
    assert (f["x"], f["y"], f["z"]) == pytest.approx((0.3, -0.1, 0.2))
    assert (f["roll"], f["pitch"], f["yaw"]) == pytest.approx((0.1, math.pi / 2, -0.5))
    assert f["gripper"] == pytest.approx(0.035)  # half open of a 70 mm stroke
    assert all(type(v) is float for k, v in f.items() if k not in ("mode1", "mode2"))


@pytest.mark.parametrize("units", ["mm_deg", "mm/deg"])
def test_piper_fields_in_millimetres_and_degrees(units):
    f = PiperAdapter(units=units).fields(CMD)
    assert (f["x"], f["y"], f["z"]) == pytest.approx((300.0, -100.0, 200.0))
    assert (f["roll"], f["pitch"], f["yaw"]) == pytest.approx((math.degrees(0.1), 90.0, math.degrees(-0.5)))
    assert f["gripper"] == pytest.approx(35.0)


def test_piper_rejects_unknown_units_and_non_finite():
    with pytest.raises(ValueError, match="units"):
        PiperAdapter(units="inch")
    with pytest.raises(ValueError, match="non-finite"):
        PiperAdapter().fields(EECommand([np.nan, 0, 0], [0, 0, 0], 1.0))


def test_piper_message_with_vendor_package(monkeypatch):
    rclpy_double.install(monkeypatch)
    [(topic, msg)] = PiperAdapter(units="mm_deg").publications(CMD)
    assert topic == "pos_cmd"
    assert type(msg).__name__ == "PosCmd" and msg.x == pytest.approx(300.0) and msg.mode1 == 0


def test_missing_vendor_package_names_what_to_install(monkeypatch):
    rclpy_double.install(monkeypatch, vendor=False)
    with pytest.raises(MissingVendorPackage, match="piper_msgs.*piper_ros"):
        PiperAdapter().to_msg(CMD)
    with pytest.raises(ImportError, match="interbotix_xs_msgs"):
        WidowXAdapter(ik=lambda pose, seed: np.zeros(6)).to_msgs(CMD, np.zeros(6))


def fake_ik(pose6, seed):
    """Deterministic stand-in: joints = a fixed function of the pose."""
    return np.array([pose6[1], pose6[0] - 0.3, pose6[2] - 0.2, 0.0, 0.1, 0.0])


def test_widowx_joint_group_command(monkeypatch):
    rclpy_double.install(monkeypatch)
    adapter = WidowXAdapter(robot_name="wx250s", ik=fake_ik)
    pubs = adapter.publications(CMD, np.zeros(6))
    (t_arm, arm), (t_grip, grip) = pubs
    assert t_arm == "/wx250s/commands/joint_group" and t_grip == "/wx250s/commands/joint_single"
    assert arm.name == "arm"
    np.testing.assert_allclose(list(arm.cmd), fake_ik(CMD.pose6, None), atol=1e-6)
    assert grip.name == "gripper" and grip.cmd == 250.0  # PWM mode: open


def test_widowx_gripper_modes():
    closed = EECommand([0.3, 0, 0.2], [0, 0, 0], 0.0)
    assert WidowXAdapter(ik=fake_ik).gripper_value(closed) == -250.0
    pos = WidowXAdapter(ik=fake_ik, gripper_mode="position")
    assert pos.gripper_value(closed) == pytest.approx(0.015)
    assert pos.gripper_value(EECommand([0.3, 0, 0.2], [0, 0, 0], 1.0)) == pytest.approx(0.037)


def test_widowx_refuses_out_of_limit_and_failed_ik():
    beyond = JOINT_LIMITS[1, 1] + 0.2
    adapter = WidowXAdapter(ik=lambda pose, seed: np.array([0, beyond, 0, 0, 0, 0]))
    with pytest.raises(UnreachableCommand, match="shoulder"):
        adapter.joint_targets(CMD, np.zeros(6))
    with pytest.raises(UnreachableCommand, match="no solution"):
        WidowXAdapter(ik=lambda pose, seed: None).joint_targets(CMD, np.zeros(6))


def test_widowx_refuses_an_ik_branch_jump():
    adapter = WidowXAdapter(ik=lambda pose, seed: np.array([2.5, 0, 0, 0, 0, 0]), max_joint_step_rad=0.7)
    with pytest.raises(UnreachableCommand, match="waist"):
        adapter.joint_targets(CMD, np.zeros(6))


def test_widowx_default_ik_is_the_simulator_model():
    pytest.importorskip("mujoco")
    from sim.ik import ArmKinematics
    from sim.robots import get_robot

    from lam_ros.adapters.ee import matrix_to_rpy

    q0 = get_robot("widowx").home_qpos
    pos, rot = ArmKinematics("widowx").forward(q0)
    target = EECommand(pos + [0.02, 0.01, -0.01], matrix_to_rpy(rot), 1.0)
    q = WidowXAdapter().joint_targets(target, q0)
    reached, _ = ArmKinematics("widowx").forward(q)
    np.testing.assert_allclose(reached, target.position, atol=2e-3)


def test_make_adapter():
    assert make_adapter("piper", units="mm_deg").units == "mm_deg"
    with pytest.raises(ValueError, match="unknown robot"):
        make_adapter("ur5")


def test_widowx_refuses_without_measured_joints_and_reads_the_one_robot_spec():
    from sim.robots import get_robot

    with pytest.raises(UnreachableCommand, match="joint state"):
        WidowXAdapter(ik=fake_ik).joint_targets(CMD, None)
    spec = get_robot("widowx")
    np.testing.assert_array_equal(JOINT_LIMITS, spec.joint_limits)
    assert WidowXAdapter.default_workspace == spec.workspace
    assert PiperAdapter.default_workspace == get_robot("piper").workspace
