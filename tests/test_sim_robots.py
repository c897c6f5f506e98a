"""Robot models, kinematics and the end-effector controller."""

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sim.controller import ArmController
from sim.ik import ArmKinematics
from sim.robot_mjcf import GENERATORS
from sim.robots import ROBOTS, get_robot


def _rot(axis: str, angle: float) -> np.ndarray:
    return Rotation.from_euler(axis, angle).as_matrix()


def widowx_urdf_fk(q: np.ndarray) -> np.ndarray:
    """Tool point from the wx250s URDF joint origins (FACTS 4), written independently of the MJCF."""
    chain = [((0, 0, 0.072), "z"), ((0, 0, 0.03865), "y"), ((0.04975, 0, 0.25), "y"),
             ((0.175, 0, 0), "x"), ((0.075, 0, 0), "y"), ((0.065, 0, 0), "x")]
    pos, rot = np.zeros(3), np.eye(3)
    for (offset, axis), angle in zip(chain, q):
        pos = pos + rot @ np.array(offset)
        rot = rot @ _rot(axis, angle)
    return pos + rot @ np.array([0.093575, 0, 0])


def piper_dh_fk(q: np.ndarray, tool: float = 0.13) -> np.ndarray:
    """Tool point from the Piper SDK's modified DH table (FACTS 4), tool along the flange z axis."""
    a = np.array([0, 0, 285.03, -21.98, 0, 0]) / 1000
    d = np.array([123, 0, 0, 250.75, 0, 91]) / 1000
    alpha = [0, -np.pi / 2, 0, np.pi / 2, -np.pi / 2, np.pi / 2]
    offset = np.deg2rad([0, -172.22, -102.78, 0, 0, 0])
    transform = np.eye(4)
    for i in range(6):
        step = np.eye(4)
        step[:3, :3] = _rot("x", alpha[i]) @ _rot("z", q[i] + offset[i])
        step[:3, 3] = [a[i], 0, 0]
        step[:3, 3] += step[:3, :3] @ np.array([0, 0, d[i]])
        transform = transform @ step
    return (transform @ np.array([0, 0, tool, 1]))[:3]


def test_widowx_zero_pose_matches_published_figure():
    pos, _ = ArmKinematics("widowx").forward(np.zeros(6))
    np.testing.assert_allclose(pos, [0.458325, 0, 0.36065], atol=0.002)


def test_piper_zero_pose_flange_matches_sdk():
    # The Piper SDK reports the flange at (56.127, 0, 213.266) mm at zero joints.
    np.testing.assert_allclose(piper_dh_fk(np.zeros(6), tool=0.0), [0.056127, 0, 0.213266], atol=1e-4)
    pos, _ = ArmKinematics("piper").forward(np.zeros(6))
    np.testing.assert_allclose(pos, piper_dh_fk(np.zeros(6)), atol=0.002)


@pytest.mark.parametrize("robot,reference", [("widowx", widowx_urdf_fk), ("piper", piper_dh_fk)])
def test_forward_kinematics_matches_reference_chain(robot, reference):
    kin = ArmKinematics(robot)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(kin.lower, kin.upper)
        pos, _ = kin.forward(q)
        np.testing.assert_allclose(pos, reference(q), atol=1e-6)


def test_joint_limits_match_vendor_figures():
    kin = ArmKinematics("widowx")
    np.testing.assert_allclose(kin.lower[1:3], [-1.885, -2.147], atol=1e-6)
    np.testing.assert_allclose(kin.upper[4], 2.147, atol=1e-6)
    piper = ArmKinematics("piper")
    np.testing.assert_allclose(np.degrees(piper.lower), [-150, 0, -170, -100, -70, -120], atol=1e-4)
    np.testing.assert_allclose(np.degrees(piper.upper), [150, 180, 0, 100, 70, 120], atol=1e-4)


@pytest.mark.parametrize("robot", ROBOTS)
def test_checked_in_assets_are_up_to_date(robot):
    assert get_robot(robot).xml_path.read_text() == GENERATORS[robot](), "run `python -m sim.robot_mjcf`"


@pytest.mark.parametrize("robot", ROBOTS)
def test_ik_reaches_poses_it_can_reach(robot):
    kin = ArmKinematics(robot)
    spec = get_robot(robot)
    rng = np.random.default_rng(1)
    for _ in range(10):
        q_true = spec.home_qpos + rng.uniform(-0.3, 0.3, 6)
        q_true = np.clip(q_true, kin.lower, kin.upper)
        pos, rot = kin.forward(q_true)
        result = kin.solve(pos, rot, spec.home_qpos)
        assert result.converged
        got_pos, got_rot = kin.forward(result.qpos)
        np.testing.assert_allclose(got_pos, pos, atol=1e-3)
        np.testing.assert_allclose(got_rot, rot, atol=2e-2)


def _controller(robot: str):
    spec = get_robot(robot)
    model = mujoco.MjModel.from_xml_path(str(spec.xml_path))
    data = mujoco.MjData(model)
    ctrl = ArmController(model, data, spec)
    ctrl.reset()
    mujoco.mj_forward(model, data)
    return ctrl


@pytest.mark.parametrize("robot", ROBOTS)
def test_delta_actions_move_the_tool_as_commanded(robot):
    ctrl = _controller(robot)
    start = ctrl.ee_pose()
    for _ in range(5):
        result = ctrl.apply_delta([0.01, -0.01, -0.01, 0, 0, 0.05, 1])
        ctrl.step_physics(100)
        assert not result.clamped, result.reasons
        np.testing.assert_allclose(result.applied_action, [0.01, -0.01, -0.01, 0, 0, 0.05, 1], atol=1e-3)
    end = ctrl.ee_pose()
    np.testing.assert_allclose(end[:3] - start[:3], [0.05, -0.05, -0.05], atol=0.006)
    assert end[5] - start[5] == pytest.approx(0.25, abs=0.03)


def test_gripper_closes_and_opens():
    ctrl = _controller("widowx")
    assert ctrl.gripper_state() == pytest.approx(1.0)
    result = ctrl.apply_delta([0, 0, 0, 0, 0, 0, 0.0])
    ctrl.step_physics(100)
    assert result.applied_action[6] == 0.0
    assert ctrl.gripper_state() < 0.05
    ctrl.apply_delta([0, 0, 0, 0, 0, 0, 1.0])
    ctrl.step_physics(100)
    assert ctrl.gripper_state() > 0.95


def test_workspace_clamp_is_reported_and_applied_action_is_what_ran():
    ctrl = _controller("widowx")
    result = ctrl.apply_delta([0, 0, -0.5, 0, 0, 0, 1])
    assert result.clamped
    assert any(r.startswith("workspace") for r in result.reasons)
    # Executed: down to the floor of the box only, not the 0.5 m asked for.
    assert result.target_pose[2] >= get_robot("widowx").workspace_low[2] - 1e-3
    assert result.applied_action[2] > -0.25


def test_joint_velocity_limit_caps_each_step():
    ctrl = _controller("widowx")
    before = ctrl._prev_ctrl.copy()
    result = ctrl.apply_absolute([0.30, 0.25, 0.10, 0, 1.4, 1.2], 1.0)
    assert any(r.startswith("joint_velocity") for r in result.reasons)
    assert np.abs(result.joint_targets - before).max() <= np.pi * 0.2 + 1e-9


@pytest.mark.parametrize(
    "action,message",
    [([0.0] * 6, r"shape \(7,\)"), ([0, 0, float("nan"), 0, 0, 0, 1], "non-finite values at indices \\[2\\]"),
     ([0, 0, 0, float("inf"), 0, 0, 1], "non-finite"), ("abc", "numeric")],
)
def test_bad_actions_raise_clear_errors(action, message):
    ctrl = _controller("widowx")
    with pytest.raises(ValueError, match=message):
        ctrl.apply_delta(action)


def test_unknown_robot_is_named():
    with pytest.raises(ValueError, match="unknown robot 'ur5'.*widowx"):
        get_robot("ur5")
