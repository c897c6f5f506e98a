"""What an ``action`` vector means: the one definition datasets, checkpoints and runtimes share.

Two conventions exist in lam_ros, each a 7-D vector ``[.., .., .., .., .., .., gripper]``
with gripper 1 = open, 0 = closed:

``bridge_delta``
    ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``: the Bridge / SIMPLER delta
    (FACTS section 5), relative to the **previously commanded target** (not the
    measured pose): translation added in the base frame, rotation
    ``R_new = R_delta @ R_target`` with extrinsic XYZ Euler angles. This is what
    the simulator's controller executes and what ``record-sim`` stores (the
    applied, clamped delta). When the measured pose drifts further than
    :data:`REBASE_DISTANCE_M` from the target (the arm was blocked, a command was
    refused), the target is re-seeded from the measured pose, as the simulator does.
``absolute_ee``
    ``[x, y, z, roll, pitch, yaw, gripper]``: an absolute end-effector target in
    the robot base frame. The live recorder and the bag converter store this (the
    commanded pose they observe).

Datasets record theirs in ``meta/info.json`` under ``"lam_ros": {"action_convention": ...}``
and checkpoints in their config; :class:`ActionApplier` turns a policy's action
into the absolute :class:`~lam_ros.adapters.ee.EECommand` the safety layer checks,
exactly as the training data defined it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lam_ros.adapters.ee import EECommand, apply_delta_action, gripper_from_action

BRIDGE_DELTA = "bridge_delta"
ABSOLUTE_EE = "absolute_ee"
CONVENTIONS = {
    BRIDGE_DELTA: ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"],
    ABSOLUTE_EE: ["x", "y", "z", "roll", "pitch", "yaw", "gripper"],
}
METADATA_KEY = "lam_ros"  # our block inside a LeRobot dataset's meta/info.json
# Distance (m) between the commanded target and the measured tool position past which a
# delta is applied to the measured pose instead (the simulator's controller uses the same).
REBASE_DISTANCE_M = 0.03


def check_convention(name: str) -> str:
    if name not in CONVENTIONS:
        raise ValueError(f"unknown action convention {name!r}; known: {', '.join(CONVENTIONS)}")
    return name


def dataset_metadata(root: str | Path) -> dict:
    """The ``lam_ros`` block of a LeRobot dataset's meta/info.json ({} when absent)."""
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    return dict(info.get(METADATA_KEY) or {})


def dataset_convention(root: str | Path) -> str:
    """The action convention a dataset's ``action`` column holds.

    Read from its metadata; older datasets without it are recognised by their
    action names (``dx..`` = bridge_delta, ``x..`` = absolute_ee); anything else
    is an error naming the dataset."""
    meta = dataset_metadata(root)
    if "action_convention" in meta:
        return check_convention(meta["action_convention"])
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    names = list((info.get("features", {}).get("action") or {}).get("names") or [])
    for conv, conv_names in CONVENTIONS.items():
        if names == conv_names:
            return conv
    raise ValueError(
        f"dataset {root}: cannot tell its action convention (no meta/info.json '{METADATA_KEY}.action_convention', "
        f"action names {names}); record it with a current lam-ros")


def check_same_convention(conventions: dict[str, str]) -> str:
    """All sources (name -> convention) must agree; returns the common convention."""
    found = set(conventions.values())
    if len(found) != 1:
        raise ValueError(f"mixed action conventions: {conventions}; train on data of one convention")
    return found.pop()


class ActionApplier:
    """Policy action (in the checkpoint's convention) -> absolute end-effector target.

    Keeps the last commanded target for ``bridge_delta``; call :meth:`reset` at
    the start of every episode (and after an e-stop) so the next delta starts
    from the measured pose."""

    def __init__(self, convention: str, rebase_distance_m: float = REBASE_DISTANCE_M):
        self.convention = check_convention(convention)
        self.rebase_distance_m = float(rebase_distance_m)
        self._target: EECommand | None = None

    def reset(self) -> None:
        self._target = None

    def commanded(self, command: EECommand) -> None:
        """Tell the applier what was actually sent (after safety clamping)."""
        self._target = command.copy()

    def target(self, action, measured_pose6, stamp_s: float = 0.0) -> EECommand:
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,):
            raise ValueError(f"action must have 7 values ({', '.join(CONVENTIONS[self.convention])}), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action.tolist()}")
        if self.convention == ABSOLUTE_EE:
            return EECommand.from_pose6(action[:6], gripper_from_action(action[6]), stamp_s=stamp_s)
        measured = np.asarray(measured_pose6, dtype=np.float64).reshape(6)
        base = measured
        if self._target is not None and np.linalg.norm(self._target.position - measured[:3]) <= self.rebase_distance_m:
            base = self._target.pose6
        return apply_delta_action(base, action, stamp_s=stamp_s)
