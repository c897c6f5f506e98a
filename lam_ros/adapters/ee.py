"""The robot-neutral end-effector command and the small rotation maths it needs.

Every robot in lam_ros is driven through one neutral command: a target pose of
the end effector in the robot base frame (xyz in metres, roll/pitch/yaw in
radians, extrinsic X-Y-Z i.e. ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``) plus a
gripper opening in [0, 1] (1 open, 0 closed, the simulator's convention). The
safety layer checks this form; adapters translate it to a driver's message.

The rotation helpers are thin names over SciPy's ``Rotation`` (the same
conventions the simulator's controller uses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = [
    "EECommand",
    "rpy_to_matrix",
    "matrix_to_rpy",
    "rotation_angle",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "wrap_angle",
    "apply_delta_action",
    "gripper_from_action",
]


@dataclass
class EECommand:
    """A target end-effector pose in the base frame plus a gripper opening."""

    position: np.ndarray  # (3,) metres, base frame
    rpy: np.ndarray  # (3,) radians, extrinsic XYZ (roll, pitch, yaw)
    gripper: float  # 1 open .. 0 closed
    stamp_s: float = 0.0  # time the command refers to (seconds, ROS or sim clock)
    frame_id: str = "base_link"
    notes: list[str] = field(default_factory=list)  # why it was clamped, for logs

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        self.rpy = np.asarray(self.rpy, dtype=np.float64).reshape(3)
        self.gripper = float(self.gripper)

    @property
    def pose6(self) -> np.ndarray:
        return np.concatenate([self.position, self.rpy])

    @classmethod
    def from_pose6(cls, pose6, gripper: float, **kwargs) -> EECommand:
        pose6 = np.asarray(pose6, dtype=np.float64).reshape(-1)
        if pose6.shape != (6,):
            raise ValueError(f"pose6 must have 6 values (xyz + rpy), got shape {pose6.shape}")
        return cls(position=pose6[:3], rpy=pose6[3:], gripper=gripper, **kwargs)

    def copy(self) -> EECommand:
        return EECommand(self.position.copy(), self.rpy.copy(), self.gripper, self.stamp_s, self.frame_id, list(self.notes))

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.position)) and np.all(np.isfinite(self.rpy)) and math.isfinite(self.gripper))


def wrap_angle(a):
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def rpy_to_matrix(rpy) -> np.ndarray:
    return Rotation.from_euler("xyz", np.asarray(rpy, dtype=np.float64).reshape(3)).as_matrix()


def matrix_to_rpy(R) -> np.ndarray:
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_euler("xyz")


def axis_angle_to_matrix(rotvec) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64).reshape(3)).as_matrix()


def matrix_to_axis_angle(R) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a rotation matrix."""
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()


def rotation_angle(rpy_a, rpy_b) -> float:
    """Angle (rad) of the rotation taking orientation ``a`` to orientation ``b``."""
    R = rpy_to_matrix(rpy_b) @ rpy_to_matrix(rpy_a).T
    return float(np.linalg.norm(matrix_to_axis_angle(R)))


def gripper_from_action(g: float) -> float:
    """Map a policy gripper value to the neutral [0, 1] opening.

    Bridge data uses 1 = open and 0 or -1 = closed; anything at or below 0
    means closed, values are clipped to [0, 1]. Non-finite stays non-finite so
    the safety layer can block it (never silently 'fix' a NaN).
    """
    g = float(g)
    if not math.isfinite(g):
        return g
    return min(1.0, max(0.0, g))


def apply_delta_action(pose6, action7, stamp_s: float = 0.0) -> EECommand:
    """Bridge delta action -> absolute target (FACTS section 5).

    Translation is added in the base frame; the Euler delta is a rotation with
    base-frame axes applied about the current end-effector position, i.e.
    ``R_target = R_delta @ R_current``.
    """
    pose6 = np.asarray(pose6, dtype=np.float64).reshape(-1)
    action7 = np.asarray(action7, dtype=np.float64).reshape(-1)
    if pose6.shape != (6,):
        raise ValueError(f"current pose must be 6 values (xyz + rpy), got shape {pose6.shape}")
    if action7.shape != (7,):
        raise ValueError(f"action must be 7 values [dx,dy,dz,droll,dpitch,dyaw,gripper], got shape {action7.shape}")
    position = pose6[:3] + action7[:3]
    if np.all(np.isfinite(action7[3:6])):
        rpy = matrix_to_rpy(rpy_to_matrix(action7[3:6]) @ rpy_to_matrix(pose6[3:]))
    else:
        rpy = np.full(3, np.nan)
    return EECommand(position, rpy, gripper_from_action(action7[6]), stamp_s=stamp_s)
