"""The two arms the project supports, described for the simulator, the IK and the ROS adapters.

:class:`RobotSpec` is the one source of truth for each arm's constants: joint names and
limits (from :mod:`sim.robot_mjcf`, which also writes them into the MJCF), home pose,
workspace box, gripper range and the real ROS 2 driver's topics. The simulator, the
ROS adapters (``lam_ros.adapters``), the safety layer's defaults and the nodes read them
from here; importing this module does not load MuJoCo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.robot_mjcf import (
    ASSETS_DIR,
    PIPER_GRIPPER,
    PIPER_JOINT_LIMITS,
    PIPER_JOINTS,
    WIDOWX_GRIPPER,
    WIDOWX_JOINT_LIMITS,
    WIDOWX_JOINTS,
    GripperGeometry,
)


@dataclass(frozen=True)
class RobotSpec:
    """Names and numbers of one arm's MJCF (all names unprefixed)."""

    name: str
    xml_path: Path
    arm_joints: tuple[str, ...]
    home_qpos: np.ndarray
    workspace_low: np.ndarray  # EE position box in the base frame (m)
    workspace_high: np.ndarray
    gripper: GripperGeometry
    # Tool pitch (rad) of the top-down grasping posture: 0 = pointing forward,
    # pi/2 = straight down. Kept below pi/2 so roll/yaw stay well defined, and
    # for the Piper within what its +-70 deg wrist (joint5) allows.
    grasp_pitch: float = 1.4
    max_joint_velocity: float = np.pi  # rad/s
    finger_joints: tuple[str, str] = ("left_finger", "right_finger")
    gripper_actuator: str = "gripper"
    ee_site: str = "ee_site"
    wrist_camera: str = "wrist_cam"
    finger_geoms: tuple[str, str] = ("left_pad", "right_pad")
    base_body: str = "base_link"
    joint_limits: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (6, 2) rad, [low, high]
    # The real ROS 2 driver: its topics (``{robot_name}`` is filled in by the node) and how
    # the runtime gets the measured end-effector pose ("" = FK from the joint states).
    driver: dict = field(default_factory=dict)

    @property
    def arm_actuators(self) -> tuple[str, ...]:
        return self.arm_joints

    @property
    def workspace(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(low xyz, high xyz) of the end-effector box as plain floats (safety / node defaults)."""
        return tuple(float(v) for v in self.workspace_low), tuple(float(v) for v in self.workspace_high)

    @property
    def finger_range(self) -> tuple[float, float]:
        """Per-finger opening (m), closed..open."""
        return float(self.gripper.finger_min), float(self.gripper.finger_max)

    def gripper_opening(self, finger_position: float) -> float:
        """A finger joint position (m) -> the gripper opening of ``observation.state``: 1 open .. 0 closed."""
        lo, hi = self.finger_range
        return float(np.clip((float(finger_position) - lo) / (hi - lo), 0.0, 1.0))

    def finger_position(self, opening: float) -> float:
        """The inverse of :meth:`gripper_opening`: an opening (1 open .. 0 closed) -> each finger joint's position (m)."""
        lo, hi = self.finger_range
        return lo + float(np.clip(opening, 0.0, 1.0)) * (hi - lo)

    def opening_from_joint_state(self, names, positions) -> float | None:
        """The gripper opening (1 open .. 0 closed) from a ``sensor_msgs/JointState``'s names and positions: the first
        finger joint's position through :meth:`gripper_opening`, or None when the message does not carry it. The one
        place a joint state becomes ``observation.state``'s gripper value (policy_node, recorder_node)."""
        names = list(names)
        finger = self.finger_joints[0]
        if finger not in names or len(positions) <= names.index(finger):
            return None
        return self.gripper_opening(positions[names.index(finger)])


_WIDOWX = RobotSpec(
    name="widowx",
    xml_path=ASSETS_DIR / "widowx.xml",
    arm_joints=WIDOWX_JOINTS,
    joint_limits=np.array(WIDOWX_JOINT_LIMITS),
    # Tool at (0.26, 0, 0.19) m pitched 1.4 rad down (solved with sim.ik): the
    # Bridge "ready" posture above the workspace. The one home pose (the
    # simulator starts here; the real arm's IK is seeded from its joint_states).
    home_qpos=np.array([0.0, -0.26, 0.3348, 0.0, 1.3254, 0.0]),
    grasp_pitch=1.4,
    workspace_low=np.array([0.12, -0.32, 0.005]),
    workspace_high=np.array([0.50, 0.32, 0.42]),
    gripper=WIDOWX_GRIPPER,
    # interbotix_xs_sdk: joint commands only; it publishes no end-effector pose (FK on our side).
    driver={"kind": "interbotix", "topic": "/{robot_name}/commands/joint_group", "group": "arm",
            "joint_states_topic": "/{robot_name}/joint_states", "ee_pose_topic": "", "ee_pose_type": "PoseStamped"},
)

_PIPER = RobotSpec(
    name="piper",
    xml_path=ASSETS_DIR / "piper.xml",
    arm_joints=PIPER_JOINTS,
    joint_limits=np.array(PIPER_JOINT_LIMITS),
    # Tool at (0.30, 0, 0.15) m pitched 1.2 rad down (solved with sim.ik).
    home_qpos=np.array([0.0, 1.3414, -0.9638, 0.0, 0.9098, 0.0]),
    grasp_pitch=1.2,
    workspace_low=np.array([0.12, -0.40, 0.005]),
    workspace_high=np.array([0.60, 0.40, 0.50]),
    gripper=PIPER_GRIPPER,
    # piper_ros: pos_cmd in; joint_states_single and end_pose (geometry_msgs/Pose, no header) out.
    driver={"kind": "piper", "topic": "pos_cmd", "joint_states_topic": "joint_states_single",
            "ee_pose_topic": "end_pose", "ee_pose_type": "Pose"},
)

ROBOT_SPECS: dict[str, RobotSpec] = {"widowx": _WIDOWX, "piper": _PIPER}
ROBOTS: tuple[str, ...] = tuple(ROBOT_SPECS)


def get_robot(name: str) -> RobotSpec:
    """The spec of robot ``name``; an unknown name raises a ValueError listing the known ones."""
    try:
        return ROBOT_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known robots: {', '.join(ROBOTS)}") from None
