"""Inverse kinematics for our arms: damped least squares on MuJoCo's site Jacobian.

Why not ``mink``: it solves a QP per step and needs ``qpsolvers`` plus a QP
backend that our pinned stack does not carry; for a 6-DoF arm with one site
target, box joint limits and no other constraints, damped least squares
(Levenberg-Marquardt style) converges in a few iterations, is deterministic,
and costs well under a millisecond. The solver runs on the standalone robot
model (``RobotSpec.xml_path``), so the simulator and the WidowX ROS adapter
share exactly one kinematic model, and solving never disturbs a live
simulation's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.robots import RobotSpec, get_robot


@dataclass
class IKResult:
    qpos: np.ndarray  # (6,) arm joint angles, within limits
    converged: bool
    position_error: float  # m
    rotation_error: float  # rad
    at_joint_limit: tuple[str, ...]


class ArmKinematics:
    """Forward and inverse kinematics of one arm, in its base frame."""

    def __init__(self, spec: RobotSpec | str):
        self.spec = get_robot(spec) if isinstance(spec, str) else spec
        self.model = mujoco.MjModel.from_xml_path(str(self.spec.xml_path))
        self.data = mujoco.MjData(self.model)
        self._joint_ids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.spec.arm_joints]
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in self._joint_ids])
        self._dadr = np.array([self.model.jnt_dofadr[j] for j in self._joint_ids])
        self.lower = self.model.jnt_range[self._joint_ids, 0].copy()
        self.upper = self.model.jnt_range[self._joint_ids, 1].copy()
        self._site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, self.spec.ee_site)
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def forward(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector (tool point) position (3,) and rotation matrix (3, 3) for arm angles ``qpos``."""
        self.data.qpos[self._qadr] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self._site].copy(), self.data.site_xmat[self._site].reshape(3, 3).copy()

    def solve(
        self,
        target_pos: np.ndarray,
        target_rot: np.ndarray,
        q_init: np.ndarray,
        *,
        max_iters: int = 60,
        damping: float = 0.01,
        pos_tol: float = 2e-4,
        rot_tol: float = 1e-3,
        rot_weight: float = 0.3,
    ) -> IKResult:
        """Joint angles reaching (target_pos, target_rot), starting the search at ``q_init``.

        Rotation errors are weighted by ``rot_weight`` (metres per radian), so
        an unreachable orientation gives way before position does. The result
        is the best iterate found, always inside the joint limits.
        """
        q = np.clip(np.asarray(q_init, dtype=np.float64), self.lower, self.upper)
        target_quat = np.zeros(4)
        mujoco.mju_mat2Quat(target_quat, np.asarray(target_rot, dtype=np.float64).reshape(9))
        cur_quat = np.zeros(4)
        best = (np.inf, q.copy(), np.inf, np.inf)
        for _ in range(max_iters):
            pos, rot = self.forward(q)
            pos_err = np.asarray(target_pos) - pos
            mujoco.mju_mat2Quat(cur_quat, rot.reshape(9))
            rot_err = np.zeros(3)
            mujoco.mju_subQuat(rot_err, target_quat, cur_quat)  # in the site frame
            rot_err = rot @ rot_err  # to the base frame, like the Jacobian
            pe, re = float(np.linalg.norm(pos_err)), float(np.linalg.norm(rot_err))
            cost = pe + rot_weight * re
            if cost < best[0]:
                best = (cost, q.copy(), pe, re)
            if pe < pos_tol and re < rot_tol:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, self._dadr], rot_weight * self._jacr[:, self._dadr]])
            err = np.concatenate([pos_err, rot_weight * rot_err])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
            # Cap the step: large steps overshoot far from the solution.
            dq *= min(1.0, 0.5 / (np.abs(dq).max() + 1e-12))
            q = np.clip(q + dq, self.lower, self.upper)
        _, q_best, pe, re = best
        at_limit = tuple(
            name
            for name, qi, lo, hi in zip(self.spec.arm_joints, q_best, self.lower, self.upper)
            if qi <= lo + 1e-6 or qi >= hi - 1e-6
        )
        return IKResult(q_best, pe < 2e-3 and re < 2e-2, pe, re, at_limit)
