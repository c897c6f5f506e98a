"""The MJCF tabletop scene: table, lights, external cameras, task objects and the robot.

Frames: the robot base sits at the world origin on the table top (z = 0), so
the world frame *is* the robot base frame the Bridge actions are expressed in.
The robot's standalone MJCF (``sim.robots``) is attached with
``MjSpec.attach`` under the prefix ``robot/`` (``robot/ee_site``,
``robot/wrist_cam``, ``robot/left_pad``...).

Task objects are primitive-geom rigid bodies with a free joint each (named
after the object). Everything an object is made of collides with condim 4
(sliding + torsional friction), so grasps are real friction grasps between the
two finger pads, never welds. Object masses are 0.03-0.25 kg.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Sequence

import numpy as np

from sim.cameras import ROBOT_PREFIX, bridge_fovy_deg, nominal_poses

TIMESTEP = 0.002  # 500 Hz physics (SIMPLER)
TABLE_HALF = (0.45, 0.60, 0.025)  # table box half sizes (m)
TABLE_CENTER = (0.30, 0.0, -0.025)  # top surface at z = 0

# Contact parameters shared by all task objects.
_OBJ_FRICTION = (1.0, 0.01, 0.001)
_OBJ_CONTACT = dict(condim=4, friction=_OBJ_FRICTION, solref=(0.01, 1.0), solimp=(0.95, 0.99, 0.001, 0.5, 2.0))


def _geom(body, gtype: str, size, rgba, pos=(0, 0, 0), quat=(1, 0, 0, 0), mass=None, fromto=None, name=""):
    import mujoco

    kwargs = dict(
        type=getattr(mujoco.mjtGeom, f"mjGEOM_{gtype.upper()}"),
        size=list(size) + [0.0] * (3 - len(size)),
        rgba=list(rgba),
        pos=list(pos),
        quat=list(quat),
        **{k: list(v) if isinstance(v, tuple) else v for k, v in _OBJ_CONTACT.items()},
    )
    if name:
        kwargs["name"] = name
    geom = body.add_geom(**kwargs)
    if fromto is not None:
        geom.fromto = list(fromto)
    if mass is not None:
        geom.mass = mass
    return geom


# --------------------------------------------------------------------------- objects
# Each builder adds geoms to an (already free-jointed) body whose origin is the
# object's reference point: the centre of its bounding box, except the basket
# (centre of its floor's underside) and flat targets (centre of the slab).


def _carrot(body) -> None:
    orange, green = (0.93, 0.45, 0.08, 1), (0.2, 0.6, 0.15, 1)
    _geom(body, "capsule", (0.016,), orange, fromto=(-0.035, 0, 0, 0.03, 0, 0), mass=0.025)
    _geom(body, "sphere", (0.011,), orange, pos=(0.045, 0, 0), mass=0.003)
    _geom(body, "cylinder", (0.009, 0.008), green, pos=(-0.058, 0, 0), quat=(0.7071068, 0, 0.7071068, 0), mass=0.002)


def _plate(body) -> None:
    _geom(body, "cylinder", (0.075, 0.006), (0.92, 0.92, 0.95, 1), mass=0.15)
    _geom(body, "cylinder", (0.05, 0.0005), (0.8, 0.85, 0.95, 1), pos=(0, 0, 0.006), mass=0.001)


def _green_cube(body) -> None:
    _geom(body, "box", (0.015, 0.015, 0.015), (0.1, 0.75, 0.2, 1), mass=0.03)


def _yellow_block(body) -> None:
    _geom(body, "box", (0.0225, 0.0225, 0.0225), (0.95, 0.85, 0.1, 1), mass=0.09)


def _spoon(body) -> None:
    silver = (0.78, 0.78, 0.82, 1)
    # The handle is a flat bar (1.6 x 1.2 cm) so a closed gripper holds it; the bowl is a flat ellipsoid.
    _geom(body, "box", (0.045, 0.008, 0.006), silver, pos=(-0.02, 0, 0), mass=0.02)
    _geom(body, "ellipsoid", (0.028, 0.018, 0.006), silver, pos=(0.05, 0, 0), mass=0.01)


def _towel(body) -> None:
    _geom(body, "box", (0.065, 0.065, 0.003), (0.2, 0.35, 0.75, 1), mass=0.05)
    _geom(body, "box", (0.065, 0.01, 0.0005), (0.9, 0.9, 0.9, 1), pos=(0, 0.04, 0.003), mass=0.001)


def _eggplant(body) -> None:
    purple, green = (0.35, 0.1, 0.45, 1), (0.25, 0.55, 0.2, 1)
    _geom(body, "capsule", (0.018,), purple, fromto=(-0.03, 0, 0, 0.035, 0, 0), mass=0.05)
    _geom(body, "cylinder", (0.007, 0.01), green, pos=(-0.055, 0, 0), quat=(0.7071068, 0, 0.7071068, 0), mass=0.003)


BASKET_INNER = (0.085, 0.07)  # inner half extents (m)
BASKET_WALL = (0.005, 0.025)  # wall half thickness, half height


def _basket(body) -> None:
    color = (0.85, 0.7, 0.25, 1)
    ix, iy = BASKET_INNER
    t, h = BASKET_WALL
    _geom(body, "box", (ix + 2 * t, iy + 2 * t, t), color, pos=(0, 0, t), mass=0.1)
    for sx in (-1, 1):
        _geom(body, "box", (t, iy + 2 * t, h), color, pos=(sx * (ix + t), 0, h), mass=0.03)
    for sy in (-1, 1):
        _geom(body, "box", (ix, t, h), color, pos=(0, sy * (iy + t), h), mass=0.03)


@dataclass(frozen=True)
class ObjectKind:
    build: Callable
    z_rest: float  # height of the body origin when the object rests on the table


OBJECT_KINDS: dict[str, ObjectKind] = {
    "carrot": ObjectKind(_carrot, 0.016),
    "plate": ObjectKind(_plate, 0.006),
    "green_cube": ObjectKind(_green_cube, 0.015),
    "yellow_block": ObjectKind(_yellow_block, 0.0225),
    "spoon": ObjectKind(_spoon, 0.006),
    "towel": ObjectKind(_towel, 0.003),
    "eggplant": ObjectKind(_eggplant, 0.018),
    "basket": ObjectKind(_basket, 0.0),
}


# --------------------------------------------------------------------------- scene


def _add_environment(spec) -> None:
    import mujoco

    spec.option.timestep = TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # Elliptic cones + impratio > 1 keep friction grasps from slipping.
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.global_.offwidth = 640  # the default; sim.cameras.MultiViewRenderer sizes it to its images
    spec.visual.global_.offheight = 480
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.4, 0.4, 0.4]
    spec.visual.headlight.specular = [0.05, 0.05, 0.05]
    # Rendering cost, not looks: headless rendering here is Mesa's software rasteriser, and at the policies'
    # 64-128 px MuJoCo's defaults cost 18-20 ms per view. Without multisampling, with 12 x 8 facets per
    # primitive instead of 28 x 16, a 512 px shadow map and the offscreen buffer at the image size, a 64 px
    # view takes 4.9 ms (5.9 ms at 128 px), shadows kept (they show the gripper's height over the table);
    # pixels differ from the old settings by 1-3 grey levels on average, at edges (docs/sim.md).
    spec.visual.quality.offsamples = 0
    spec.visual.quality.numslices = 12
    spec.visual.quality.numstacks = 8
    spec.visual.quality.shadowsize = 512

    spec.add_texture(
        name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.75, 0.78, 0.8], rgb2=[0.45, 0.47, 0.5], width=64, height=384,
    )
    spec.add_texture(
        name="floor_tex", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.35, 0.35, 0.38], rgb2=[0.3, 0.3, 0.33], width=256, height=256,
    )
    spec.add_material(name="floor_mat", textures=["", "floor_tex"], texrepeat=[6, 6])
    spec.add_texture(
        name="table_tex", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_FLAT,
        rgb1=[0.62, 0.5, 0.36], rgb2=[0.5, 0.4, 0.3], mark=mujoco.mjtMark.mjMARK_RANDOM, random=0.05,
        markrgb=[0.45, 0.36, 0.26], width=256, height=256,
    )
    spec.add_material(name="table_mat", textures=["", "table_tex"], texrepeat=[3, 3])

    world = spec.worldbody
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75],
                   material="floor_mat")
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF), pos=list(TABLE_CENTER),
                   material="table_mat", condim=4, friction=[1.0, 0.01, 0.001])
    # A back wall behind the table (Bridge scenes have a backdrop, and it bounds the side view).
    world.add_geom(name="backdrop", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 1.2, 0.6], pos=[0.9, 0, 0.3],
                   rgba=[0.78, 0.78, 0.74, 1], contype=0, conaffinity=0)
    world.add_light(name="key_light", type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, pos=[0.3, -0.3, 1.5],
                    dir=[0.1, 0.25, -1.0], diffuse=[0.55, 0.55, 0.55], specular=[0.1, 0.1, 0.1], castshadow=True)
    world.add_light(name="fill_light", type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, pos=[0.3, 0.5, 1.0],
                    dir=[0.0, -0.5, -1.0], diffuse=[0.2, 0.2, 0.2], specular=[0, 0, 0], castshadow=False)
    fovy = bridge_fovy_deg()
    for name, pose in nominal_poses().items():
        world.add_camera(name=name, pos=list(pose.pos), quat=list(pose.quat), fovy=fovy)


def _attach_robot(spec, robot_spec) -> None:
    import mujoco

    robot = mujoco.MjSpec.from_file(str(robot_spec.xml_path))
    frame = spec.worldbody.add_frame(pos=[0, 0, 0])
    spec.attach(robot, prefix=ROBOT_PREFIX, frame=frame)


def build_scene(robot_spec, objects: Sequence[tuple[str, str]] = (), distractors: int = 0):
    """The scene's ``MjSpec``: table, lights, cameras, one free body per ``(name, kind)`` and the robot.

    ``robot_spec`` is a :class:`sim.robots.RobotSpec` (or ``None`` for an
    object-only scene, used by tests). Objects start at the table centre; the
    task places them on reset. ``distractors`` adds that many kinematic,
    non-colliding distractor bodies (``sim.noise.add_distractors``).
    """
    import mujoco

    spec = mujoco.MjSpec()
    spec.modelname = "lam_ros_tabletop"
    spec.compiler.autolimits = True
    _add_environment(spec)
    for name, kind in objects:
        if kind not in OBJECT_KINDS:
            raise ValueError(f"unknown object kind {kind!r}; known: {', '.join(OBJECT_KINDS)}")
        body = spec.worldbody.add_body(name=name, pos=[0.3, 0.0, OBJECT_KINDS[kind].z_rest])
        body.add_freejoint(name=name)
        OBJECT_KINDS[kind].build(body)
    if robot_spec is not None:
        _attach_robot(spec, robot_spec)
    if distractors:  # last, so every other body and geom keeps its id (and the physics its summation order)
        from sim.noise import add_distractors

        add_distractors(spec, distractors)
    return spec


def compile_scene(robot_spec, objects: Sequence[tuple[str, str]] = (), distractors: int = 0):
    """(model, data) of :func:`build_scene`."""
    import mujoco

    model = build_scene(robot_spec, objects, distractors).compile()
    return model, mujoco.MjData(model)


def body_geom_ids(model, body_name: str) -> np.ndarray:
    """Ids of all geoms of a body (objects are single bodies)."""
    import mujoco

    body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body_name)
    if body_id < 0:
        raise ValueError(f"body {body_name!r} is not in the model")
    return np.flatnonzero(model.geom_bodyid == body_id)


def world_aabb(model, data, body_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(center, half extents) of the world-frame axis-aligned box around a body's geoms."""
    lows, highs = [], []
    for gid in body_geom_ids(model, body_name):
        center_local = model.geom_aabb[gid, :3]
        half_local = model.geom_aabb[gid, 3:]
        rot = data.geom_xmat[gid].reshape(3, 3)
        center = data.geom_xpos[gid] + rot @ center_local
        half = np.abs(rot) @ half_local
        lows.append(center - half)
        highs.append(center + half)
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    return (low + high) / 2, (high - low) / 2
