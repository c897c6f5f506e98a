"""AgileX Piper: robot-neutral command -> ``piper_msgs/PosCmd`` on ``pos_cmd``.

The piper_ros driver's units changed between versions (older: mm and
degrees, newer: m and rad, FACTS section 4), so the unit is a parameter and
must match the driver you run. Orientation is roll/pitch/yaw (extrinsic XYZ,
same as :class:`lam_ros.adapters.ee.EECommand`); the gripper field is the
opening between the fingers (each finger 0-35 mm, so 0-70 mm in total).
"""

from __future__ import annotations

import math

import numpy as np

from lam_ros.adapters.ee import EECommand
from lam_ros.adapters.vendor import vendor_message
from sim.robot_mjcf import PIPER_JOINT_LIMITS_DEG
from sim.robots import get_robot

UNITS = {"m_rad": (1.0, 1.0), "mm_deg": (1000.0, 180.0 / math.pi)}
_ALIASES = {"m/rad": "m_rad", "m": "m_rad", "mm/deg": "mm_deg", "mm": "mm_deg"}

_SPEC = get_robot("piper")  # the one source of the arm's constants (sim.robots)
#: Joint limits from the Piper datasheet (deg), as written in sim.robot_mjcf; for docs/logs.
JOINT_LIMITS_DEG = PIPER_JOINT_LIMITS_DEG


def normalize_units(units: str) -> str:
    u = _ALIASES.get(str(units).strip().lower(), str(units).strip().lower())
    if u not in UNITS:
        raise ValueError(f"Piper units must be one of {sorted(UNITS)} (or m/rad, mm/deg), got {units!r}")
    return u


class PiperAdapter:
    """Converts :class:`EECommand` to PosCmd fields / messages."""

    robot = "piper"
    needs_joint_seed = False  # the driver takes an EE pose (pos_cmd); its own IK needs no seed from us
    # The simulator's box (sim.robots); set workspace_min/max for your table.
    default_workspace = _SPEC.workspace

    def __init__(self, units: str = "m_rad", gripper_stroke_m: float = 2 * _SPEC.finger_range[1], topic: str = "pos_cmd",
                 mode1: int = 0, mode2: int = 0):
        self.units = normalize_units(units)
        if not (gripper_stroke_m > 0):
            raise ValueError(f"gripper_stroke_m must be > 0, got {gripper_stroke_m}")
        self.gripper_stroke_m = float(gripper_stroke_m)
        self.topic = topic
        self.mode1, self.mode2 = int(mode1), int(mode2)

    def fields(self, cmd: EECommand) -> dict:
        """PosCmd field values as plain Python floats/ints (rclpy rejects NumPy scalars)."""
        if not cmd.is_finite():
            raise ValueError(f"refusing to convert a non-finite command to PosCmd: {cmd.pose6.tolist()} {cmd.gripper}")
        lin, ang = UNITS[self.units]
        x, y, z = (float(v * lin) for v in cmd.position)
        roll, pitch, yaw = (float(v * ang) for v in cmd.rpy)
        gripper = float(np.clip(cmd.gripper, 0.0, 1.0) * self.gripper_stroke_m * lin)
        return dict(x=x, y=y, z=z, roll=roll, pitch=pitch, yaw=yaw, gripper=gripper, mode1=self.mode1, mode2=self.mode2)

    def to_msg(self, cmd: EECommand):
        PosCmd = vendor_message("piper_msgs", "PosCmd")
        msg = PosCmd()
        for k, v in self.fields(cmd).items():
            setattr(msg, k, v)
        return msg

    def publisher_specs(self) -> list[tuple[str, type]]:
        """(topic, message class) the node creates publishers for (imports the vendor package)."""
        return [(self.topic, vendor_message("piper_msgs", "PosCmd"))]

    def publications(self, cmd: EECommand, joint_seed=None) -> list[tuple[str, object]]:
        """(topic, message) pairs to publish for one command."""
        return [(self.topic, self.to_msg(cmd))]
