"""End-effector control of a simulated arm: Bridge delta actions and absolute pose targets.

Each control step turns an end-effector target into joint position targets by
IK (``sim.ik``), after validating the command and enforcing the workspace box,
the joint limits and the joint velocity limit. Whatever was clamped is
reported, and the action actually executed (``applied_action``) is computed
from the joint targets that were sent, so recorders store what the robot did,
not what was asked.

Conventions (Bridge / SIMPLER, shared FACTS section 5): translation in the
robot base frame; the rotation delta is extrinsic roll-pitch-yaw about
base-frame axes, applied about the current tool point (R_new = R_delta R_old);
gripper >= 0.5 opens, below closes. Deltas accumulate on the previous target
(like SIMPLER's target-delta controller) so a slow servo does not make the
commanded path drift; when the arm is blocked far from its target the target
is re-based on the measured pose to avoid wind-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from lam_ros.action_convention import REBASE_DISTANCE_M
from sim.ik import ArmKinematics
from sim.robots import RobotSpec, get_robot

ACTION_DIM = 7
# Re-base the target on the measured pose when the tool lags further than this (m); the
# runtime's bridge_delta applier uses the same figure (lam_ros.action_convention).
MAX_TRACKING_ERROR = REBASE_DISTANCE_M


def validate_vector(value, dim: int, what: str) -> np.ndarray:
    """``value`` as a float64 vector of length ``dim``; a ValueError naming ``what`` otherwise."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric, got {type(value).__name__}") from exc
    if arr.shape != (dim,):
        raise ValueError(f"{what} must have shape ({dim},), got {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{what} has non-finite values at indices {bad.tolist()}: {arr.tolist()}")
    return arr


def pose_to_matrix(pose6: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(pose6[:3], dtype=np.float64), Rotation.from_euler("xyz", pose6[3:6]).as_matrix()


def matrix_to_pose(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    return np.concatenate([pos, Rotation.from_matrix(rot).as_euler("xyz")])


@dataclass
class ControlResult:
    applied_action: np.ndarray  # (7,) Bridge delta actually executed
    target_pose: np.ndarray  # (6,) tool pose the joint targets reach (base frame, xyz + rpy)
    joint_targets: np.ndarray  # (6,)
    clamped: bool = False
    reasons: list[str] = field(default_factory=list)


class ArmController:
    """Drives one arm inside a (possibly composed) MuJoCo model; ``prefix`` is its attach prefix."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, spec: RobotSpec | str, prefix: str = "",
                 control_dt: float = 0.2):
        self.spec = get_robot(spec) if isinstance(spec, str) else spec
        self.model, self.data, self.prefix, self.control_dt = model, data, prefix, control_dt
        self.kinematics = ArmKinematics(self.spec)

        def obj_id(kind, name):
            idx = mujoco.mj_name2id(model, kind, prefix + name)
            if idx < 0:
                raise ValueError(f"model has no {kind.name[6:].lower()} named {prefix + name!r}")
            return idx

        joints = [obj_id(mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.spec.arm_joints]
        self._qadr = np.array([model.jnt_qposadr[j] for j in joints])
        self._dadr = np.array([model.jnt_dofadr[j] for j in joints])
        self._act = np.array([obj_id(mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in self.spec.arm_actuators])
        self._grip_act = obj_id(mujoco.mjtObj.mjOBJ_ACTUATOR, self.spec.gripper_actuator)
        fingers = [obj_id(mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.spec.finger_joints]
        self._finger_qadr = np.array([model.jnt_qposadr[j] for j in fingers])
        self._finger_dadr = np.array([model.jnt_dofadr[j] for j in fingers])
        self._site = obj_id(mujoco.mjtObj.mjOBJ_SITE, self.spec.ee_site)
        self._base = obj_id(mujoco.mjtObj.mjOBJ_BODY, self.spec.base_body)
        self._target_pos = np.zeros(3)
        self._target_rot = np.eye(3)
        self._prev_ctrl = np.zeros(len(self._act))
        self._start_ctrl = self._prev_ctrl

    # --- state -----------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def ee_pose(self) -> np.ndarray:
        """Measured tool pose in the robot base frame: (6,) xyz + extrinsic rpy."""
        base_pos = self.data.xpos[self._base]
        base_rot = self.data.xmat[self._base].reshape(3, 3)
        pos = base_rot.T @ (self.data.site_xpos[self._site] - base_pos)
        rot = base_rot.T @ self.data.site_xmat[self._site].reshape(3, 3)
        return matrix_to_pose(pos, rot)

    def gripper_state(self) -> float:
        """Finger opening normalised to 1 open .. 0 closed."""
        return self.spec.gripper_opening(self.data.qpos[self._finger_qadr[0]])

    def target_pose(self) -> np.ndarray:
        return matrix_to_pose(self._target_pos, self._target_rot)

    # --- commands --------------------------------------------------------------------------
    def reset(self, qpos: np.ndarray | None = None) -> None:
        """Arm at ``qpos`` (default: home) at rest, gripper open, targets synced. Call mj_forward after."""
        q = self.spec.home_qpos if qpos is None else validate_vector(qpos, 6, "joint positions")
        self.data.qpos[self._qadr] = q
        self.data.qvel[self._dadr] = 0.0
        self.data.qpos[self._finger_qadr] = self.spec.gripper.finger_max
        self.data.qvel[self._finger_dadr] = 0.0
        self.data.ctrl[self._act] = q
        self.data.ctrl[self._grip_act] = self.spec.gripper.finger_max
        self._prev_ctrl = q.copy()
        self._start_ctrl = q.copy()
        self._target_pos, self._target_rot = self.kinematics.forward(q)

    def apply_delta(self, action) -> ControlResult:
        """Execute a 7-D Bridge delta action (validated; NaN / wrong shape raise ValueError)."""
        action = validate_vector(action, ACTION_DIM, "action")
        self._rebase_if_blocked()
        pos = self._target_pos + action[:3]
        rot = Rotation.from_euler("xyz", action[3:6]).as_matrix() @ self._target_rot
        return self._apply_target(pos, rot, action[6])

    def apply_absolute(self, pose6, gripper: float) -> ControlResult:
        """Move towards an absolute tool pose (base frame, xyz + rpy) with a gripper command."""
        pose6 = validate_vector(pose6, 6, "target pose")
        gripper = float(validate_vector([gripper], 1, "gripper command")[0])
        pos, rot = pose_to_matrix(pose6)
        return self._apply_target(pos, rot, gripper)

    def _rebase_if_blocked(self) -> None:
        measured = self.ee_pose()
        if np.linalg.norm(measured[:3] - self._target_pos) > MAX_TRACKING_ERROR:
            self._target_pos, self._target_rot = pose_to_matrix(measured)

    def _apply_target(self, pos: np.ndarray, rot: np.ndarray, gripper: float) -> ControlResult:
        reasons: list[str] = []
        low, high = self.spec.workspace_low, self.spec.workspace_high
        clipped = np.clip(pos, low, high)
        if not np.allclose(clipped, pos):
            axes = [ax for ax, a, b in zip("xyz", pos, clipped) if a != b]
            reasons.append(f"workspace: target {'/'.join(axes)} clipped to the box {low.tolist()}..{high.tolist()}")
        ik = self.kinematics.solve(clipped, rot, self._prev_ctrl)
        if not ik.converged:
            reasons.append(
                f"unreachable: IK residual {ik.position_error * 1000:.1f} mm / {np.degrees(ik.rotation_error):.1f} deg"
                + (f" (at joint limits: {', '.join(ik.at_joint_limit)})" if ik.at_joint_limit else "")
            )
        max_step = self.spec.max_joint_velocity * self.control_dt
        step = ik.qpos - self._prev_ctrl
        if np.abs(step).max() > max_step:
            reasons.append(f"joint_velocity: joint step {np.abs(step).max():.3f} rad limited to {max_step:.3f} rad")
            step = np.clip(step, -max_step, max_step)
        q_cmd, new_pos, new_rot = self._shrink_into_workspace(step)
        if not np.allclose(q_cmd, self._prev_ctrl + step):
            reasons.append("workspace: IK solution left the box; joint step shortened")

        open_gripper = gripper >= 0.5
        g = self.spec.gripper
        self.data.ctrl[self._act] = q_cmd
        self.data.ctrl[self._grip_act] = g.finger_max if open_gripper else g.finger_min
        applied = np.concatenate([
            new_pos - self._target_pos,
            Rotation.from_matrix(new_rot @ self._target_rot.T).as_euler("xyz"),
            [1.0 if open_gripper else 0.0],
        ])
        self._start_ctrl, self._prev_ctrl = self._prev_ctrl, q_cmd
        self._target_pos, self._target_rot = new_pos, new_rot
        return ControlResult(applied, matrix_to_pose(new_pos, new_rot), q_cmd.copy(), bool(reasons), reasons)

    def _shrink_into_workspace(self, step: np.ndarray, tol: float = 1e-3):
        """The longest fraction of the joint step whose tool point stays inside the workspace box."""
        low, high = self.spec.workspace_low - tol, self.spec.workspace_high + tol
        for fraction in (1.0, 0.75, 0.5, 0.25, 0.125, 0.0):
            q_cmd = self._prev_ctrl + fraction * step
            pos, rot = self.kinematics.forward(q_cmd)
            if np.all(pos >= low) and np.all(pos <= high):
                break
        return q_cmd, pos, rot

    def step_physics(self, n_substeps: int, ramp_fraction: float = 0.5) -> None:
        """Advance physics by one control period, ramping joint targets linearly over its first part.

        A stepped position target makes the servo jerk (and shakes grasped
        objects loose); ramping mimics the smooth trajectory a real driver
        interpolates between 5 Hz commands.
        """
        start = self._start_ctrl
        end = self._prev_ctrl
        ramp_steps = max(1, int(n_substeps * ramp_fraction))
        chunk = max(1, ramp_steps // 10)
        done = 0
        while done < n_substeps:
            n = min(chunk, n_substeps - done) if done < ramp_steps else n_substeps - done
            alpha = min(1.0, (done + n) / ramp_steps)
            self.data.ctrl[self._act] = start + alpha * (end - start)
            mujoco.mj_step(self.model, self.data, nstep=n)
            done += n
        self._start_ctrl = end
