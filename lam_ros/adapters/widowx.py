"""WidowX 250 (Interbotix wx250s): EE command -> IK -> ``JointGroupCommand``.

The Interbotix driver takes joint targets only; Bridge-style end-effector
control solves IK on the client (FACTS section 4). The IK callable is
injected (``ik(pose6, seed_q6) -> q6 or None``) so the same kinematic model
as the simulator is used; by default it is taken from ``sim.ik``.

Output: ``interbotix_xs_msgs/JointGroupCommand(name="arm", cmd=[6 joints])`` on
``/<robot_name>/commands/joint_group`` and, for the gripper,
``interbotix_xs_msgs/JointSingleCommand(name="gripper", cmd=...)`` on
``/<robot_name>/commands/joint_single`` (PWM effort in the driver's default
``pwm`` mode, or finger position in m in ``position`` mode).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from lam_ros.adapters.ee import EECommand, matrix_to_rpy, rpy_to_matrix
from lam_ros.adapters.vendor import vendor_message
from sim.robots import get_robot

log = logging.getLogger(__name__)

_SPEC = get_robot("widowx")  # the one source of the arm's constants (sim.robots)
JOINT_NAMES = _SPEC.arm_joints
#: Joint ranges (rad) from the wx250s URDF (FACTS section 4), as written in sim.robot_mjcf.
JOINT_LIMITS = _SPEC.joint_limits
JOINT_VELOCITY_LIMIT = _SPEC.max_joint_velocity  # rad/s

IKFn = Callable[[np.ndarray, np.ndarray], "np.ndarray | None"]


class UnreachableCommand(ValueError):
    """IK found no solution within the joint limits (the command is not sent)."""


def default_ik(robot: str = "widowx") -> IKFn:
    """The simulator's IK (``sim.ik.ArmKinematics``: same MJCF model as the simulation).

    Returns ``ik(pose6, seed_q) -> q6 | None``; None when the solver did not
    converge (the adapter then refuses to send rather than send a best effort).
    """
    try:
        from sim.ik import ArmKinematics  # noqa: PLC0415 - mujoco, only when needed
    except ImportError as exc:
        raise ImportError(
            f"WidowX adapter needs an IK: pass ik=... or make sim.ik importable (mujoco installed): {exc}"
        ) from exc
    kin = ArmKinematics(robot)

    def ik(pose6, seed_q):
        pose6 = np.asarray(pose6, dtype=np.float64)
        result = kin.solve(pose6[:3], rpy_to_matrix(pose6[3:]), np.asarray(seed_q, dtype=np.float64))
        if not result.converged:
            log.warning(
                "IK did not converge for %s: position error %.1f mm, rotation error %.1f deg",
                np.round(pose6, 4).tolist(), result.position_error * 1000, math.degrees(result.rotation_error),
            )
            return None
        return result.qpos

    ik.forward = kin.forward  # FK of the same model, for joint_states -> EE pose
    return ik


class WidowXAdapter:
    robot = "widowx"
    # publications() solves IK seeded with the measured joints: the controller's watchdog requires them fresh
    needs_joint_seed = True
    # The simulator's box (sim.robots); set workspace_min/max for your table.
    default_workspace = _SPEC.workspace

    def __init__(self, robot_name: str = "wx250s", ik: IKFn | None = None, group_name: str = "arm",
                 gripper_mode: str = "pwm", gripper_pwm: float = 250.0, max_joint_step_rad: float = 0.7):
        if gripper_mode not in ("pwm", "position"):
            raise ValueError(f"gripper_mode must be 'pwm' or 'position', got {gripper_mode!r}")
        self.robot_name = robot_name.strip("/")
        self._ik = ik
        self.group_name = group_name
        self.gripper_mode = gripper_mode
        self.gripper_pwm = float(gripper_pwm)
        self.max_joint_step_rad = float(max_joint_step_rad)

    @property
    def topic(self) -> str:
        return f"/{self.robot_name}/commands/joint_group"

    @property
    def gripper_topic(self) -> str:
        return f"/{self.robot_name}/commands/joint_single"

    @property
    def ik(self) -> IKFn:
        if self._ik is None:
            self._ik = default_ik()
        return self._ik

    def joint_targets(self, cmd: EECommand, seed_q) -> np.ndarray:
        """Solve IK seeded with the arm's measured joints; raise :class:`UnreachableCommand` (with why)
        if it must not be sent. Without measured joints nothing is sent: an IK seeded from a guessed
        pose can land on another branch and swing the real arm."""
        if seed_q is None:
            raise UnreachableCommand(
                "no joint state received yet to seed the IK: check joint_states_topic "
                "(the Interbotix driver publishes /<robot_name>/joint_states)"
            )
        seed = np.asarray(seed_q, dtype=np.float64).reshape(6)
        if not cmd.is_finite():
            raise UnreachableCommand(f"non-finite command {cmd.pose6.tolist()}")
        q = self.ik(cmd.pose6, seed)
        if q is None:
            raise UnreachableCommand(f"IK found no solution for pose {np.round(cmd.pose6, 4).tolist()}")
        q = np.asarray(q, dtype=np.float64).reshape(-1)
        if q.shape != (6,) or not np.all(np.isfinite(q)):
            raise UnreachableCommand(f"IK returned an invalid solution {q.tolist()}")
        lo, hi = JOINT_LIMITS[:, 0], JOINT_LIMITS[:, 1]
        out = (q < lo - 1e-6) | (q > hi + 1e-6)
        if np.any(out):
            names = [f"{JOINT_NAMES[i]}={q[i]:+.3f} not in [{lo[i]:+.3f}, {hi[i]:+.3f}]" for i in np.flatnonzero(out)]
            raise UnreachableCommand("IK solution outside joint limits: " + ", ".join(names))
        jump = np.abs(q - seed)
        if np.max(jump) > self.max_joint_step_rad:
            i = int(np.argmax(jump))
            raise UnreachableCommand(
                f"IK solution jumps {JOINT_NAMES[i]} by {jump[i]:.2f} rad > {self.max_joint_step_rad:.2f} rad in one step "
                "(likely a different IK branch)"
            )
        return np.clip(q, lo, hi)

    def gripper_value(self, cmd: EECommand) -> float:
        g = float(np.clip(cmd.gripper, 0.0, 1.0))
        if self.gripper_mode == "pwm":
            return self.gripper_pwm if g >= 0.5 else -self.gripper_pwm
        return _SPEC.finger_position(g)

    def to_msgs(self, cmd: EECommand, seed_q=None):
        """(JointGroupCommand, JointSingleCommand) for one command."""
        JointGroupCommand = vendor_message("interbotix_xs_msgs", "JointGroupCommand")
        JointSingleCommand = vendor_message("interbotix_xs_msgs", "JointSingleCommand")
        q = self.joint_targets(cmd, seed_q)
        arm = JointGroupCommand()
        arm.name = self.group_name
        arm.cmd = [float(v) for v in q]
        grip = JointSingleCommand()
        grip.name = "gripper"
        grip.cmd = float(self.gripper_value(cmd))
        return arm, grip

    def publisher_specs(self) -> list[tuple[str, type]]:
        """(topic, message class) the node creates publishers for (imports the vendor package)."""
        return [
            (self.topic, vendor_message("interbotix_xs_msgs", "JointGroupCommand")),
            (self.gripper_topic, vendor_message("interbotix_xs_msgs", "JointSingleCommand")),
        ]

    def forward(self, q):
        """EE pose6 from arm joints, with the IK's model (needs the default sim IK)."""
        fk = getattr(self.ik, "forward", None)
        if fk is None:
            raise ValueError("this IK has no forward kinematics: publish the EE pose on a topic instead")
        pos, rot = fk(np.asarray(q, dtype=np.float64))
        return np.concatenate([pos, matrix_to_rpy(rot)])

    def publications(self, cmd: EECommand, joint_seed=None) -> list[tuple[str, object]]:
        arm, grip = self.to_msgs(cmd, joint_seed)
        return [(self.topic, arm), (self.gripper_topic, grip)]
