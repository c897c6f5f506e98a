"""The four SIMPLER-style Bridge tasks: objects, seeded placements, instructions and metrics.

Metrics follow SIMPLER's ``PutOnBridgeInSceneEnv.evaluate`` (shared FACTS
section 5), computed from MuJoCo state every control step:

* ``moved_correct_object``: the source moved > 3 cm in xy since the objects
  settled, and more than every other object.
* ``grasp``: both finger pads push on the source object, and the two contact
  forces oppose each other (a squeeze, SIMPLER's angle test); ``consecutive_grasp``:
  grasped for >= 5 control steps in a row.
* ``success`` (judged at the final step by the env's caller): the source's
  xy is within the target's bounding-box half-diagonal + 3 mm of the target's
  reference point, and 0 < z offset, z offset - both half heights <= 2 cm
  (SIMPLER's z flag; 6 cm for the basket, whose reference point is its floor).
  For carrot and cube the source must also touch nothing but the target and
  the robot (contact force > 1e-4 N counts as a touch).

Object bounding boxes are world-frame AABBs taken after the objects settle,
as SIMPLER takes them at episode start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scene import OBJECT_KINDS, body_geom_ids, world_aabb

TASKS: tuple[str, ...] = ("carrot_on_plate", "stack_cube", "spoon_on_towel", "eggplant_in_basket")

# Where objects are placed (world = robot base frame, m). Both arms reach it.
PLACEMENT_LOW = np.array([0.22, -0.17])
PLACEMENT_HIGH = np.array([0.40, 0.17])
CONSECUTIVE_GRASP_STEPS = 5
MOVED_THRESHOLD = 0.03  # m (SIMPLER)
CONTACT_FORCE_EPS = 1e-4  # N
GRASP_FORCE_MIN = 0.05  # N per finger


@dataclass(frozen=True)
class TaskSpec:
    name: str
    instruction: str
    source: str  # object (and body) name
    target: str
    max_episode_steps: int
    require_only_target_contact: bool  # carrot / cube: source touches only target or robot
    z_flag_offset: float  # SIMPLER's z_flag_required_offset
    source_radius: float  # footprint radii for non-overlapping placement (m)
    target_radius: float
    target_yaw_range: float = 0.3  # uniform +- (rad)
    # Where along the source's own x axis the expert grasps (spoon: the handle).
    grasp_offset: float = 0.0

    @property
    def objects(self) -> tuple[tuple[str, str], ...]:
        return ((self.source, self.source), (self.target, self.target))


TASK_SPECS: dict[str, TaskSpec] = {
    "carrot_on_plate": TaskSpec(
        "carrot_on_plate", "put carrot on plate", "carrot", "plate", 60, True, 0.02, 0.062, 0.075
    ),
    "stack_cube": TaskSpec(
        "stack_cube", "stack the green block on the yellow block", "green_cube", "yellow_block", 60, True, 0.02,
        0.022, 0.032,
    ),
    "spoon_on_towel": TaskSpec(
        "spoon_on_towel", "put the spoon on the towel", "spoon", "towel", 60, False, 0.02, 0.075, 0.075,
        grasp_offset=-0.025,
    ),
    "eggplant_in_basket": TaskSpec(
        "eggplant_in_basket", "put eggplant into yellow basket", "eggplant", "basket", 120, False, 0.06, 0.06,
        0.115, target_yaw_range=0.2,
    ),
}
assert tuple(TASK_SPECS) == TASKS


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name raises a ValueError listing the known ones."""
    try:
        return TASK_SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


@dataclass(frozen=True)
class Placement:
    """Initial object poses: name -> (x, y, yaw)."""

    poses: dict[str, tuple[float, float, float]]


LAYOUTS: tuple[str, ...] = ("uniform", "simpler")

# SIMPLER's WidowX episodes (SimplerEnv's bridge "InScene" envs): source and target sit on two different
# corners of a square centred 0.31 m in front of the robot base (SIMPLER: xy_center (-0.16, 0) in a world
# where the base stands at (0.147, 0.028) facing -x). 12 ordered corner pairs per square x the listed source
# yaws = 24 episodes per task. Per task: (half edge lengths of the squares, source yaws).
SIMPLER_CENTER = np.array([0.31, 0.0])
SIMPLER_GRIDS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "carrot_on_plate": ((0.075,), (0.0, np.pi / 2)),
    "stack_cube": ((0.05, 0.10), (0.0,)),
    "spoon_on_towel": ((0.075,), (0.0, np.pi / 2)),
    # SIMPLER starts the eggplant in a sink our scene lacks: corners 0.2 m apart keep the basket clear.
    "eggplant_in_basket": ((0.10,), (0.0, np.pi / 2)),
}
# Seeded jitter around each SIMPLER configuration, so evaluation seeds never replay a training pose.
SIMPLER_JITTER_XY = 0.015  # m, uniform +- per axis
SIMPLER_JITTER_YAW = 0.25  # rad, uniform +-


def simpler_configs(task: TaskSpec) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """SIMPLER's episode configurations of ``task``: (source xy, target xy, source yaw), in SIMPLER's order."""
    halves, yaws = SIMPLER_GRIDS[task.name]
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=np.float64)
    configs = []
    for half in halves:
        grid = SIMPLER_CENTER + corners * half
        for i, j in ((i, j) for i in range(4) for j in range(4) if i != j):
            configs.extend((grid[i], grid[j], yaw) for yaw in yaws)
    return configs


def sample_placement(task: TaskSpec, rng: np.random.Generator, max_tries: int = 1000, layout: str = "uniform",
                     episode: int | None = None) -> Placement:
    """Seeded, non-overlapping source / target placement.

    ``layout="uniform"``: anywhere in the reachable box, any source yaw (harder than SIMPLER).
    ``layout="simpler"``: SIMPLER's configuration number ``episode`` (mod their count; drawn from ``rng``
    when None), jittered by :data:`SIMPLER_JITTER_XY` / :data:`SIMPLER_JITTER_YAW` from ``rng``.
    """
    if layout == "simpler":
        configs = simpler_configs(task)
        index = int(rng.integers(len(configs))) if episode is None else int(episode) % len(configs)
        src, tgt, yaw = configs[index]
        src = src + rng.uniform(-SIMPLER_JITTER_XY, SIMPLER_JITTER_XY, 2)
        tgt = tgt + rng.uniform(-SIMPLER_JITTER_XY, SIMPLER_JITTER_XY, 2)
        src_yaw = yaw + rng.uniform(-SIMPLER_JITTER_YAW, SIMPLER_JITTER_YAW)
        tgt_yaw = rng.uniform(-SIMPLER_JITTER_YAW, SIMPLER_JITTER_YAW)
        return Placement({task.source: (*src, src_yaw), task.target: (*tgt, tgt_yaw)})
    if layout != "uniform":
        raise ValueError(f"unknown placement layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    min_gap = task.source_radius + task.target_radius + 0.02
    # The footprint must stay inside the placement box, not just the centre.
    for _ in range(max_tries):
        src = rng.uniform(PLACEMENT_LOW, PLACEMENT_HIGH)
        tgt = rng.uniform(PLACEMENT_LOW + 0.02, PLACEMENT_HIGH - 0.02)
        if np.linalg.norm(src - tgt) >= min_gap:
            break
    else:  # pragma: no cover - the box is large enough for every task
        raise RuntimeError(f"could not place the objects of {task.name} after {max_tries} tries")
    src_yaw = rng.uniform(-np.pi, np.pi)
    tgt_yaw = rng.uniform(-task.target_yaw_range, task.target_yaw_range)
    return Placement({task.source: (*src, src_yaw), task.target: (*tgt, tgt_yaw)})


def apply_placement(model, data, placement: Placement, drop: float = 0.002) -> None:
    """Write the placement into the objects' free joints (at rest height + ``drop``, zero velocity)."""
    import mujoco

    for name, (x, y, yaw) in placement.poses.items():
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        qadr, dadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
        z = OBJECT_KINDS[name].z_rest + drop
        data.qpos[qadr:qadr + 7] = [x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        data.qvel[dadr:dadr + 6] = 0.0


# --------------------------------------------------------------------------- metrics


class TaskEvaluator:
    """SIMPLER's per-step metrics for one task in one compiled scene."""

    def __init__(self, model, task: TaskSpec, finger_geoms: tuple[str, str], robot_prefix: str = "robot/"):
        import mujoco

        self.model, self.task = model, task
        self.objects = [name for name, _ in task.objects]
        self._body = {n: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in self.objects}
        self._source_geoms = set(body_geom_ids(model, task.source).tolist())
        self._target_geoms = set(body_geom_ids(model, task.target).tolist())
        self._finger_geoms = []
        for name in finger_geoms:
            gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, robot_prefix + name)
            if gid < 0:
                raise ValueError(f"finger geom {robot_prefix + name!r} is not in the model")
            self._finger_geoms.append(gid)
        robot_bodies = [b for b in range(model.nbody) if model.body(b).name.startswith(robot_prefix)]
        self._robot_geoms = set(np.flatnonzero(np.isin(model.geom_bodyid, robot_bodies)).tolist())
        self._force = np.zeros(6)
        self.reset_state = None

    def reset(self, data) -> None:
        """Record the settled object positions and bounding boxes (call after the objects settle)."""
        self._settled_xyz = {n: data.xpos[self._body[n]].copy() for n in self.objects}
        self._src_half = world_aabb(self.model, data, self.task.source)[1]
        self._tgt_half = world_aabb(self.model, data, self.task.target)[1]
        self._consecutive = 0

    def object_pose(self, data, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quat wxyz (4,)) of an object's body."""
        body = self._body[name]
        return data.xpos[body].copy(), data.xquat[body].copy()

    def _contact_force_on(self, data, i: int, geom: int) -> np.ndarray:
        """World-frame force that contact ``i`` exerts on ``geom`` (one of its two geoms)."""
        import mujoco

        con = data.contact[i]
        mujoco.mj_contactForce(self.model, data, i, self._force)
        # mj_contactForce: force of geom1 on geom2, in the contact frame (rows = axes).
        force = con.frame.reshape(3, 3).T @ self._force[:3]
        return force if con.geom2 == geom else -force

    def _scan_contacts(self, data) -> tuple[list[np.ndarray], bool]:
        """(forces on the source from each finger pad, whether it touches anything else)."""
        finger_force = [np.zeros(3) for _ in self._finger_geoms]
        touches_other = False
        for i in range(data.ncon):
            con = data.contact[i]
            g1, g2 = int(con.geom1), int(con.geom2)
            if g1 in self._source_geoms:
                src, other = g1, g2
            elif g2 in self._source_geoms:
                src, other = g2, g1
            else:
                continue
            force = self._contact_force_on(data, i, src)
            if other in self._finger_geoms:
                finger_force[self._finger_geoms.index(other)] += force
            elif other not in self._target_geoms and other not in self._robot_geoms:
                if np.linalg.norm(force) > CONTACT_FORCE_EPS:
                    touches_other = True
        return finger_force, touches_other

    def evaluate(self, data) -> dict[str, bool]:
        """The metrics for the current state; advances the consecutive-grasp counter (call once per step)."""
        finger_force, touches_other = self._scan_contacts(data)
        left, right = finger_force
        squeeze = (
            np.linalg.norm(left) >= GRASP_FORCE_MIN
            and np.linalg.norm(right) >= GRASP_FORCE_MIN
            # opposing pushes: more than 90 degrees apart (SIMPLER: each within 60 deg of the closing axis)
            and float(np.dot(left, right)) < 0.0
        )
        self._consecutive = self._consecutive + 1 if squeeze else 0

        src_pos = data.xpos[self._body[self.task.source]]
        tgt_pos = data.xpos[self._body[self.task.target]]
        moves = {n: float(np.linalg.norm(data.xpos[self._body[n]][:2] - self._settled_xyz[n][:2])) for n in self.objects}
        src_move = moves[self.task.source]
        others = [m for n, m in moves.items() if n != self.task.source]
        moved_correct = src_move > MOVED_THRESHOLD and all(m < src_move for m in others)
        moved_wrong = any(m > MOVED_THRESHOLD for m in others) and any(m > src_move for m in others)

        offset = src_pos - tgt_pos
        xy_flag = np.linalg.norm(offset[:2]) <= np.linalg.norm(self._tgt_half[:2]) + 0.003
        z_flag = offset[2] > 0 and (offset[2] - self._tgt_half[2] - self._src_half[2]) <= self.task.z_flag_offset
        on_target = bool(xy_flag and z_flag)
        if self.task.require_only_target_contact:
            on_target = on_target and not touches_other
        return {
            "success": on_target,
            "grasp": bool(squeeze),
            "consecutive_grasp": self._consecutive >= CONSECUTIVE_GRASP_STEPS,
            "moved_correct_object": bool(moved_correct),
            "moved_wrong_object": bool(moved_wrong),
        }
