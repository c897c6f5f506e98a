"""Robot adapters: the robot-neutral :class:`EECommand` -> a driver's messages.

``make_adapter("piper", units="mm_deg")`` / ``make_adapter("widowx", robot_name="wx250s", ik=...)``.
Each adapter has ``publications(cmd, joint_seed) -> [(topic, msg), ...]`` and ``needs_joint_seed`` (its
IK starts from the measured joints, which the controller's watchdog then requires fresh);
vendor message packages are imported only there (see :mod:`.vendor`).
"""

from __future__ import annotations

from lam_ros.adapters.ee import EECommand, apply_delta_action
from lam_ros.adapters.piper import PiperAdapter
from lam_ros.adapters.vendor import MissingVendorPackage, vendor_message
from lam_ros.adapters.widowx import UnreachableCommand, WidowXAdapter

ROBOTS = {"widowx": WidowXAdapter, "piper": PiperAdapter}

__all__ = [
    "EECommand",
    "apply_delta_action",
    "PiperAdapter",
    "WidowXAdapter",
    "UnreachableCommand",
    "MissingVendorPackage",
    "vendor_message",
    "make_adapter",
    "ROBOTS",
]


def make_adapter(robot: str, **kwargs):
    try:
        cls = ROBOTS[robot]
    except KeyError:
        raise ValueError(f"unknown robot {robot!r}; choose one of {sorted(ROBOTS)}") from None
    return cls(**kwargs)
