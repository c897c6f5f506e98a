"""The robot-neutral end-effector command and the small rotation maths it needs.

Every robot in lam_ros is driven through one neutral command: a target pose of
the end effector in the robot base frame (xyz in metres, roll/pitch/yaw in
radians, extrinsic X-Y-Z i.e. ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``) plus a
gripper opening in [0, 1] (1 open, 0 closed, the simulator's convention). The
safety layer checks this form; adapters translate it to a driver's message.

The rotation helpers are hand-written with NumPy because SciPy is not a
dependency of the project and only a handful of conversions are needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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
    def from_pose6(cls, pose6, gripper: float, **kwargs) -> "EECommand":
        pose6 = np.asarray(pose6, dtype=np.float64).reshape(-1)
        if pose6.shape != (6,):
            raise ValueError(f"pose6 must have 6 values (xyz + rpy), got shape {pose6.shape}")
        return cls(position=pose6[:3], rpy=pose6[3:], gripper=gripper, **kwargs)

    def copy(self) -> "EECommand":
        return EECommand(self.position.copy(), self.rpy.copy(), self.gripper, self.stamp_s, self.frame_id, list(self.notes))

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.position)) and np.all(np.isfinite(self.rpy)) and math.isfinite(self.gripper))


def wrap_angle(a):
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi


def rpy_to_matrix(rpy) -> np.ndarray:
    r, p, y = (float(v) for v in np.asarray(rpy, dtype=np.float64).reshape(3))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_rpy(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    sp = -R[2, 0]
    sp = min(1.0, max(-1.0, sp))
    pitch = math.asin(sp)
    if abs(sp) < 1.0 - 1e-9:
        roll = math.atan2(R[2, 1], R[2, 2])
        yaw = math.atan2(R[1, 0], R[0, 0])
    else:  # gimbal lock: put everything in yaw
        roll = 0.0
        yaw = math.atan2(-R[0, 1], R[1, 1])
    return np.array([roll, pitch, yaw])


def axis_angle_to_matrix(rotvec) -> np.ndarray:
    """Rodrigues' formula for a rotation vector (axis * angle)."""
    rotvec = np.asarray(rotvec, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(rotvec))
    if theta < 1e-12:
        return np.eye(3)
    k = rotvec / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * K + (1 - math.cos(theta)) * (K @ K)


def matrix_to_axis_angle(R) -> np.ndarray:
    """Inverse of :func:`axis_angle_to_matrix` (rotation vector, angle in [0, pi])."""
    R = np.asarray(R, dtype=np.float64)
    cos_t = min(1.0, max(-1.0, (np.trace(R) - 1.0) / 2.0))
    theta = math.acos(cos_t)
    if theta < 1e-9:
        return np.zeros(3)
    if theta > math.pi - 1e-6:
        # Near pi the antisymmetric part vanishes: take the axis from R + I.
        M = (R + np.eye(3)) / 2.0
        i = int(np.argmax(np.diag(M)))
        axis = M[:, i] / math.sqrt(max(M[i, i], 1e-12))
        return axis / np.linalg.norm(axis) * theta
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(theta))
    return axis * theta


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
