"""Lazy imports of robot-vendor ROS message packages.

``piper_msgs`` and ``interbotix_xs_msgs`` are built from the vendors' source
repositories, not installed with ROS, so a user running lam_ros for one robot
usually lacks the other's messages. They are imported only when an adapter
builds a message, and a missing package fails with the name to install.
"""

from __future__ import annotations

import importlib

INSTALL_HINTS = {
    "piper_msgs": (
        "the AgileX Piper ROS 2 driver's message package 'piper_msgs' "
        "(https://github.com/agilexrobotics/piper_ros, branch for your ROS distro): clone it into your "
        "colcon workspace, `colcon build --packages-select piper_msgs`, then `source install/setup.bash`"
    ),
    "interbotix_xs_msgs": (
        "the Interbotix X-series message package 'interbotix_xs_msgs' "
        "(https://github.com/Interbotix/interbotix_ros_core, or `apt install ros-$ROS_DISTRO-interbotix-xs-msgs` "
        "where packaged): build it in your colcon workspace and `source install/setup.bash`"
    ),
}


class MissingVendorPackage(ImportError):
    """A robot vendor's ROS message package is not importable."""


def vendor_message(package: str, name: str):
    """Return message class ``<package>.msg.<name>`` or raise :class:`MissingVendorPackage`."""
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError as exc:
        hint = INSTALL_HINTS.get(package, f"the ROS 2 package '{package}'")
        raise MissingVendorPackage(
            f"cannot import {package}.msg.{name} ({exc}); install {hint}. "
            "Or run with dry_run:=true / publish_driver:=false to only publish the robot-neutral command."
        ) from exc
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise MissingVendorPackage(
            f"{package}.msg has no message {name}: your {package} is a different version than lam_ros expects"
        ) from exc
