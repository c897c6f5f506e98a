"""Scripted experts: pick the source object and put it on / in the target, with Bridge delta actions.

The expert reads privileged state from the env (object poses, the arm
controller's current target pose, the arm's kinematics) and walks through phases:

  approach above the grasp point -> descend -> close -> lift -> carry over the
  target, descending as it closes in (a funnel) -> open -> retreat -> hold

Each control step emits a 7-D Bridge delta [dx, dy, dz, droll, dpitch, dyaw,
gripper] towards the phase's waypoint, at most ``MAX_TRANSLATION`` m and
``MAX_ROTATION`` rad per step. Deltas are taken relative to the controller's
*target* pose (the controller accumulates deltas on its target), so the
commanded path converges exactly even while the servos lag.

Orientations. The tool points (nearly) down and the fingers close across the
object's long axis. Which orientation is used is planned with the arm's own IK
(privileged, like the object poses): the first reachable one of

1. approach tilted 10 / 20 / 30 / 0 deg along the object's long axis, fingers
   closing horizontally (clean on flat objects like the spoon); then the same
   with the heading 15 or 30 deg off (fingers closing slightly diagonally);
2. approach tilted towards the radial direction, closing axis leaning.

The Piper's wrist (joint5 +-70 deg) rules out many of these near its base,
hence the search. For the carry, the grasp orientation swung about the base z
axis with the arm is used when reachable over the target, else the reachable
"tilted radially" orientation closest to it (rotating the object in the hand
is harmless: every target accepts any object yaw).

If the object is not lifted after closing, the expert opens and tries again.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.controller import pose_to_matrix

MAX_TRANSLATION = 0.04  # m per control step
MAX_ROTATION = 0.35  # rad per control step
HOVER = 0.07  # m above the grasp point before descending
LIFT = 0.09  # m lift of the tool above the grasp height
MIN_TOOL_Z = 0.014  # the finger pads reach ~1 cm beyond the tool point
RELEASE_CLEARANCE = 0.012  # m between the object's bottom and the target's top at release
MAX_DESCEND_STEPS = 6
MAX_LOWER_STEPS = 6  # steps over the target before releasing anyway (the object may rest on something)
CARRY_ALIGNED = 0.01  # m between the object's and the target's centres (xy) to release
CARRY_FUNNEL = 0.04  # m of that offset over which the carry descends from lift to release height


def tool_rotation(heading: float, tilt: float) -> np.ndarray:
    """Tool rotation (columns: approach x, closing y, z) pointing down, tilted by ``tilt`` towards ``heading``.

    The fingers close horizontally, perpendicular to ``heading``.
    """
    return Rotation.from_euler("ZY", [heading, np.pi / 2 - tilt]).as_matrix()


def leaning_rotation(radial: float, long_axis: float, tilt: float) -> np.ndarray:
    """Approach tilted by ``tilt`` towards ``radial``; fingers close across ``long_axis`` (the closing axis leans).

    Tool z points away from the base, as at the arms' home poses.
    """
    approach = np.array([np.sin(tilt) * np.cos(radial), np.sin(tilt) * np.sin(radial), -np.cos(tilt)])
    along = np.array([np.cos(long_axis), np.sin(long_axis), 0.0])
    closing = np.cross(approach, along)
    closing /= np.linalg.norm(closing)
    up = np.cross(approach, closing)
    if up @ np.array([np.cos(radial), np.sin(radial), 0.0]) < 0:
        closing, up = -closing, -up
    return np.column_stack([approach, closing, up])


def _quat_yaw(quat_wxyz: np.ndarray) -> float:
    """Heading of a body's x axis in the xy plane."""
    rot = Rotation.from_quat(np.asarray(quat_wxyz)[[1, 2, 3, 0]]).as_matrix()
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _rot_dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(Rotation.from_matrix(b @ a.T).as_rotvec()))


class ScriptedExpert:
    """Pick-and-place expert for any of the four tasks (see module docstring)."""

    def __init__(self, env):
        self.env = env.unwrapped
        self.task = self.env.task
        # Cubes look the same every 90 deg of yaw, elongated objects every 180.
        self._symmetry = np.pi / 2 if self.task.source == "green_cube" else np.pi
        self.reset()

    def reset(self) -> None:
        self.phase = "approach"
        self._phase_steps = 0
        self._aligned_steps = 0
        self._grasp_pos: np.ndarray | None = None
        self._grasp_rot: np.ndarray | None = None
        self._carry_rot: np.ndarray | None = None
        self._retreat_goal: np.ndarray | None = None
        self.attempts = 0
        self._last_step: int | None = None

    # ------------------------------------------------------------------ planning
    def _reachable(self, rot: np.ndarray, points) -> bool:
        """Whether IK reaches every point with rotation ``rot`` (chained from home)."""
        kin = self.env.controller.kinematics
        q = self.env.robot_spec.home_qpos
        for point in points:
            res = kin.solve(np.asarray(point, dtype=np.float64), rot, q, max_iters=200)
            if not res.converged:
                return False
            q = res.qpos
        return True

    def _plan_grasp(self, src_pose: np.ndarray, src_center: np.ndarray) -> None:
        yaw_obj = _quat_yaw(src_pose[3:])
        # Grasp point: along the object's x axis (spoon: the handle), at its bbox centre height.
        point = src_pose[:3] + self.task.grasp_offset * np.array([np.cos(yaw_obj), np.sin(yaw_obj), 0.0])
        point[2] = max(src_center[2], MIN_TOOL_Z)
        radial = float(np.arctan2(point[1], point[0]))
        # Of the symmetric long-axis headings, the one closest to radial keeps the wrist untwisted.
        long_axis = _wrap(yaw_obj + np.round((radial - yaw_obj) / self._symmetry) * self._symmetry)
        # Closing slightly diagonally across the object (up to 30 deg off) still holds it: the
        # squeeze turns it into line; that beats a leaning closing axis on flat objects.
        candidates = [tool_rotation(long_axis + np.radians(off), np.radians(t))
                      for off in (0.0, 15.0, -15.0, 30.0, -30.0) for t in (10.0, 20.0, 30.0, 0.0)]
        candidates += [leaning_rotation(radial, long_axis, np.radians(t)) for t in (20.0, 30.0, 40.0)]
        points = (point + [0, 0, HOVER], point, point + [0, 0, LIFT])
        self._grasp_rot = next((r for r in candidates if self._reachable(r, points)), candidates[0])
        self._grasp_pos = point
        self._grasp_radial = radial
        self._carry_rot = None

    def _plan_carry(self, tgt_center: np.ndarray, release_z: float) -> np.ndarray:
        radial = float(np.arctan2(tgt_center[1], tgt_center[0]))
        swung = Rotation.from_euler("z", _wrap(radial - self._grasp_radial)).as_matrix() @ self._grasp_rot
        points = ([tgt_center[0], tgt_center[1], self._lift_z()], [tgt_center[0], tgt_center[1], release_z])
        if self._reachable(swung, points):
            return swung
        options = [tool_rotation(radial, np.radians(t)) @ Rotation.from_euler("x", b).as_matrix()
                   for t in (20.0, 30.0) for b in np.radians(np.arange(-180, 180, 30))]
        options.sort(key=lambda r: _rot_dist(swung, r))
        return next((r for r in options if self._reachable(r, points)), swung)

    def _lift_z(self) -> float:
        return float(self._grasp_pos[2] + LIFT)

    # ------------------------------------------------------------------ control
    def act(self, obs=None) -> np.ndarray:
        """The next (7,) action; ``obs`` is accepted for API symmetry (the expert reads privileged state)."""
        from sim.scene import world_aabb

        env = self.env
        if self._last_step is not None and env.step_count < self._last_step:
            self.reset()  # a new episode started
        self._last_step = env.step_count
        src_pose = env.object_poses()[self.task.source]
        src = world_aabb(env.model, env.data, self.task.source)
        tgt = world_aabb(env.model, env.data, self.task.target)
        if self._grasp_pos is None:
            self._plan_grasp(src_pose, src[0])
        target = env.controller.target_pose()
        cur_pos, cur_rot = pose_to_matrix(target)
        measured = env.controller.ee_pose()[:3]
        self._phase_steps += 1
        # A phase that ends this step hands over to the next one at once, so no step is wasted.
        for _ in range(4):
            phase = self.phase
            goal, gripper, rot = self._phase_goal(src, tgt, cur_pos, cur_rot, measured, src_pose)
            if self.phase == phase:
                break
        return self._delta(cur_pos, cur_rot, goal, rot, gripper)

    def _phase_goal(self, src, tgt, cur_pos, cur_rot, measured, src_pose):
        """(waypoint, gripper command, tool rotation) of the current phase; may switch ``self.phase``."""
        (src_center, src_half), (tgt_center, tgt_half) = src, tgt
        grasp, lift_z = self._grasp_pos, self._lift_z()
        release_bottom = tgt_center[2] + tgt_half[2] + RELEASE_CLEARANCE

        def near(p, tol):
            return np.linalg.norm(measured - p) < tol

        if self.phase == "approach":
            goal, rot = grasp + [0, 0, HOVER], self._grasp_rot
            if near(goal, 0.015) and _rot_dist(cur_rot, rot) < 0.05:
                self._enter("descend")
            return goal, 1.0, rot
        if self.phase == "descend":
            if near(grasp, 0.006) or self._phase_steps > MAX_DESCEND_STEPS:
                self._enter("close")
            return grasp, 1.0, self._grasp_rot
        if self.phase == "close":
            if self._phase_steps > 2:
                self._enter("lift")
            return grasp, 0.0, self._grasp_rot
        if self.phase == "lift":
            goal = np.array([grasp[0], grasp[1], lift_z])
            if measured[2] > lift_z - 0.02:
                lifted = src_center[2] - src_half[2] > 0.015
                self._enter("carry" if lifted else "regrasp")
            return goal, 0.0, self._grasp_rot
        if self.phase == "regrasp":  # open, then plan a fresh grasp of wherever the object is now
            if self._phase_steps > 2:
                self.attempts += 1
                self._plan_grasp(src_pose, src_center)
                self._enter("approach")
            return np.array([grasp[0], grasp[1], lift_z]), 1.0, self._grasp_rot
        if self.phase == "carry":
            # Plan the carry orientation from the object's offset to the target's centre.
            if self._carry_rot is None:
                release_tool_z = lift_z + release_bottom - (src_center[2] - src_half[2])
                self._carry_rot = self._plan_carry(tgt_center, max(release_tool_z, MIN_TOOL_Z))
            rot = self._carry_rot
            # Put the object's centre over the target's centre (corrects for where it sits in the hand).
            xy = tgt_center[:2] - (src_center[:2] - measured[:2])
            # A funnel, not a carry-then-lower switch: the tool descends from the lift height to the
            # release height as the object closes in on the target (never below the release height,
            # which clears the target's top). The action is then a smooth function of where the
            # object is, which a learned policy can imitate; a sharp switch at a 1 cm threshold it
            # cannot (it hovered above the target).
            release_z = max(measured[2] + release_bottom - (src_center[2] - src_half[2]), MIN_TOOL_Z)
            off = float(np.linalg.norm(src_center[:2] - tgt_center[:2]))
            height = np.clip((off - CARRY_ALIGNED) / CARRY_FUNNEL, 0.0, 1.0)
            if _rot_dist(cur_rot, rot) > 0.15:
                height = 1.0
            goal = np.array([xy[0], xy[1], release_z + height * max(lift_z - release_z, 0.0)])
            if off < CARRY_ALIGNED:
                self._aligned_steps += 1
                if abs(release_z - measured[2]) < 0.006 or self._aligned_steps > MAX_LOWER_STEPS:
                    self._enter("release")
            return goal, 0.0, rot
        if self.phase == "release":
            if self._phase_steps > 2:
                self._retreat_goal = np.array([measured[0], measured[1], max(measured[2], lift_z)])
                self._enter("retreat")
            return cur_pos, 1.0, cur_rot
        if self.phase == "retreat":
            if near(self._retreat_goal, 0.015):
                self._enter("hold")
            return self._retreat_goal, 1.0, cur_rot
        return cur_pos, 1.0, cur_rot  # hold

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self._phase_steps = 1
        self._aligned_steps = 0

    @staticmethod
    def _delta(cur_pos, cur_rot, goal_pos, goal_rot, gripper) -> np.ndarray:
        dpos = np.asarray(goal_pos, dtype=np.float64) - cur_pos
        norm = np.linalg.norm(dpos)
        if norm > MAX_TRANSLATION:
            dpos *= MAX_TRANSLATION / norm
        rotvec = Rotation.from_matrix(goal_rot @ cur_rot.T).as_rotvec()
        angle = np.linalg.norm(rotvec)
        if angle > MAX_ROTATION:
            rotvec *= MAX_ROTATION / angle
        # Bridge convention: extrinsic roll-pitch-yaw about base axes, R_new = R_delta R_old.
        drpy = Rotation.from_rotvec(rotvec).as_euler("xyz")
        return np.concatenate([dpos, drpy, [float(gripper)]])


def make_expert(env) -> ScriptedExpert:
    """The scripted expert for ``env`` (any of the four tasks)."""
    return ScriptedExpert(env)


def run_episode(env, seed: int, expert: ScriptedExpert | None = None, on_step=None) -> dict:
    """One full expert episode from ``seed``; returns ``env.episode_metrics()`` plus the seed.

    ``on_step(obs, action, info)`` is called after the reset (with ``action=None`` and the
    reset's info) and after every step, e.g. to record frames or demonstrations.
    """
    base = env.unwrapped
    expert = expert or make_expert(env)
    expert.reset()
    obs, info = env.reset(seed=seed)
    if on_step is not None:
        on_step(obs, None, info)
    truncated = False
    while not truncated:
        action = expert.act(obs)
        obs, _, _, truncated, info = env.step(action)
        if on_step is not None:
            on_step(obs, action, info)
    return {"seed": int(seed), **base.episode_metrics()}
