"""The two arms the project supports, described for the simulator, the IK and the ROS adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.robot_mjcf import ASSETS_DIR, PIPER_GRIPPER, WIDOWX_GRIPPER, GripperGeometry


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
    driver: dict = field(default_factory=dict)

    @property
    def arm_actuators(self) -> tuple[str, ...]:
        return self.arm_joints


_WIDOWX = RobotSpec(
    name="widowx",
    xml_path=ASSETS_DIR / "widowx.xml",
    arm_joints=("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"),
    # Tool at (0.26, 0, 0.19) m pitched 1.4 rad down (solved with sim.ik): the
    # Bridge "ready" posture above the workspace.
    home_qpos=np.array([0.0, -0.26, 0.3348, 0.0, 1.3254, 0.0]),
    grasp_pitch=1.4,
    workspace_low=np.array([0.12, -0.32, 0.005]),
    workspace_high=np.array([0.50, 0.32, 0.42]),
    gripper=WIDOWX_GRIPPER,
    driver={"kind": "interbotix", "topic": "/{robot_name}/commands/joint_group", "group": "arm"},
)

_PIPER = RobotSpec(
    name="piper",
    xml_path=ASSETS_DIR / "piper.xml",
    arm_joints=("joint1", "joint2", "joint3", "joint4", "joint5", "joint6"),
    # Tool at (0.30, 0, 0.15) m pitched 1.2 rad down (solved with sim.ik).
    home_qpos=np.array([0.0, 1.3414, -0.9638, 0.0, 0.9098, 0.0]),
    grasp_pitch=1.2,
    workspace_low=np.array([0.12, -0.40, 0.005]),
    workspace_high=np.array([0.60, 0.40, 0.50]),
    gripper=PIPER_GRIPPER,
    driver={"kind": "piper", "topic": "pos_cmd"},
)

ROBOT_SPECS: dict[str, RobotSpec] = {"widowx": _WIDOWX, "piper": _PIPER}
ROBOTS: tuple[str, ...] = tuple(ROBOT_SPECS)


def get_robot(name: str) -> RobotSpec:
    """The spec of robot ``name``; an unknown name raises a ValueError listing the known ones."""
    try:
        return ROBOT_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known robots: {', '.join(ROBOTS)}") from None
