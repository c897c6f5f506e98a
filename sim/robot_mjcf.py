"""Generates the MJCF of our two arms from their published kinematics.

The WidowX 250 6-DoF chain comes from the joint origins of the Interbotix
wx250s URDF; the AgileX Piper chain from its modified (Craig) DH table with the
j2 / j3 offsets of the Piper SDK (both in shared FACTS section 4). Links are
primitive capsules (visual only: the arm never needs to collide with the
scene in our tasks), the parallel gripper is two sliding finger pads that do
collide, so grasps are real contact grasps, not welds.

The checked-in files ``sim/assets/<robot>.xml`` are the output of
``python -m sim.robot_mjcf``; ``tests/test_sim_robots.py`` checks that they are
up to date and that their forward kinematics match the published figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSETS_DIR = Path(__file__).resolve().parent / "assets"

# MuJoCo position servos: high stiffness like the real Dynamixel / Piper joint
# controllers; gravity is compensated per body (gravcomp) as the vendor
# controllers do, so the servo tracks targets without steady-state sag.
ARM_KP = 400.0
ARM_KV = 40.0
ARM_FORCE = 60.0
GRIPPER_KP = 300.0
GRIPPER_FORCE = 12.0


@dataclass(frozen=True)
class Link:
    """One arm joint: the fixed transform from its parent body, its axis and range."""

    name: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]  # wxyz
    axis: tuple[float, float, float]
    range: tuple[float, float]


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """Rotation matrix -> MuJoCo quaternion (w, x, y, z)."""
    import mujoco

    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(mat, dtype=np.float64).reshape(9))
    return quat


# Joint names and ranges (rad) of both arms: the one place they are written down
# (sim.robots.RobotSpec, the ROS adapters, the safety layer and the nodes read them from here).
WIDOWX_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
WIDOWX_JOINT_LIMITS = (
    (-np.pi, np.pi), (-1.885, 1.990), (-2.147, 1.606), (-np.pi, np.pi), (-1.745, 2.147), (-np.pi, np.pi),
)
PIPER_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
PIPER_JOINT_LIMITS_DEG = ((-150, 150), (0, 180), (-170, 0), (-100, 100), (-70, 70), (-120, 120))
PIPER_JOINT_LIMITS = tuple(tuple(float(v) for v in np.deg2rad(lim)) for lim in PIPER_JOINT_LIMITS_DEG)

_WIDOWX_ORIGINS = (  # (pos from parent, axis) per joint, from the wx250s URDF
    ((0, 0, 0.072), (0, 0, 1)),
    ((0, 0, 0.03865), (0, 1, 0)),
    ((0.04975, 0, 0.25), (0, 1, 0)),
    ((0.175, 0, 0), (1, 0, 0)),
    ((0.075, 0, 0), (0, 1, 0)),
    ((0.065, 0, 0), (1, 0, 0)),
)
WIDOWX_LINKS = tuple(
    Link(name, pos, (1, 0, 0, 0), axis, rng)
    for name, (pos, axis), rng in zip(WIDOWX_JOINTS, _WIDOWX_ORIGINS, WIDOWX_JOINT_LIMITS)
)
# ee_gripper_link: 0.093575 m along x from the wrist_rotate (gripper) link.
WIDOWX_TOOL_OFFSET = 0.093575


def piper_links() -> tuple[Link, ...]:
    """Piper joints from modified DH: T_i = RotX(alpha_{i-1}) TransX(a_{i-1}) RotZ(theta_i) TransZ(d_i)."""
    a = np.array([0, 0, 285.03, -21.98, 0, 0]) / 1000.0
    d = np.array([123, 0, 0, 250.75, 0, 91]) / 1000.0
    alpha = np.array([0, -np.pi / 2, 0, np.pi / 2, -np.pi / 2, np.pi / 2])
    offset = np.deg2rad([0, -172.22, -102.78, 0, 0, 0])
    links = []
    for i in range(6):
        ca, sa = np.cos(alpha[i]), np.sin(alpha[i])
        rot_x = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
        co, so = np.cos(offset[i]), np.sin(offset[i])
        rot_z = np.array([[co, -so, 0], [so, co, 0], [0, 0, 1]])
        rot = rot_x @ rot_z
        # TransZ(d) happens after both rotations, i.e. along the new z axis.
        pos = np.array([a[i], 0, 0]) + rot @ np.array([0, 0, d[i]])
        links.append(Link(PIPER_JOINTS[i], tuple(pos), tuple(mat_to_quat(rot)), (0, 0, 1), PIPER_JOINT_LIMITS[i]))
    return tuple(links)


# The Piper gripper's fingertip centre sits about 0.13 m beyond the flange
# along the flange z axis (the flange is the DH frame 6).
PIPER_TOOL_OFFSET = 0.13


@dataclass(frozen=True)
class GripperGeometry:
    finger_min: float  # per-finger opening (m), closed
    finger_max: float  # per-finger opening (m), open
    pad_length: float  # along the approach axis
    palm_to_tool: float  # distance from the palm block to the tool point


WIDOWX_GRIPPER = GripperGeometry(0.015, 0.037, 0.03, 0.05)
PIPER_GRIPPER = GripperGeometry(0.0, 0.035, 0.03, 0.06)


def _link_geom(child_pos: np.ndarray, radius: float, rgba: str) -> str:
    """A visual capsule from the body origin to the next joint origin."""
    length = float(np.linalg.norm(child_pos))
    if length < 1e-6:
        return f'<geom type="sphere" size="{radius}" rgba="{rgba}" contype="0" conaffinity="0" group="1"/>'
    return (
        f'<geom type="capsule" fromto="0 0 0 {_fmt(child_pos)}" size="{radius}" rgba="{rgba}" '
        f'contype="0" conaffinity="0" group="1" mass="0.15"/>'
    )


def _gripper_xml(tool_offset: float, tool_quat: np.ndarray, grip: GripperGeometry, indent: str) -> str:
    """Palm, two sliding finger pads, the tool site and the wrist camera.

    A finger joint's value is the vendor's per-finger opening; the pad's inner
    face sits at (opening - finger_min + 2 mm) from the centre line, so a
    closed gripper leaves a 4 mm gap and thin objects can still be held.

    Everything is expressed in a 'tool frame' whose x axis is the approach
    direction, z is 'up' when the gripper points forward, and the fingers slide
    along +-y (the Bridge / ee_gripper_link convention).
    """
    palm_x = tool_offset - grip.palm_to_tool
    pad = grip.pad_length / 2
    lines = [
        f'<body name="tool_frame" quat="{_fmt(tool_quat)}">',
        f'  <geom name="palm" type="box" pos="{palm_x:.5f} 0 0" size="0.012 0.045 0.02" rgba="0.15 0.15 0.15 1" '
        'contype="1" conaffinity="1" mass="0.1"/>',
        f'  <site name="ee_site" pos="{tool_offset:.6f} 0 0" size="0.006" rgba="1 0 0 1" group="2"/>',
        # Wrist camera: behind and above the fingers, looking along the approach axis.
        # MuJoCo cameras look along their -z axis with +y up: xyaxes sets that.
        f'  <camera name="wrist_cam" pos="{palm_x - 0.02:.5f} 0 0.06" xyaxes="0 -1 0 0.5 0 1" fovy="75"/>',
    ]
    for side, sign in (("left", 1), ("right", -1)):
        lines += [
            f'  <body name="{side}_finger" pos="{tool_offset - pad + 0.005:.5f} 0 0">',
            f'    <joint name="{side}_finger" type="slide" axis="0 {sign} 0" range="{grip.finger_min} {grip.finger_max}" '
            'damping="2" armature="0.01"/>',
            f'    <geom name="{side}_pad" type="box" pos="0 {sign * (0.008 - grip.finger_min):.4f} 0" size="{pad + 0.005:.4f} 0.006 0.012" '
            'rgba="0.3 0.3 0.35 1" condim="4" friction="1.5 0.02 0.002" solref="0.01 1" solimp="0.95 0.99 0.001" '
            'mass="0.03"/>',
            "  </body>",
        ]
    lines.append("</body>")
    return "\n".join(indent + line for line in lines)


def build_mjcf(name: str, links: tuple[Link, ...], tool_offset: float, tool_quat: np.ndarray,
               grip: GripperGeometry, link_color: str) -> str:
    """The standalone MJCF of one arm; the base sits at the origin on z = 0."""
    body_lines: list[str] = []
    indent = "    "
    for i, link in enumerate(links):
        next_pos = np.array(links[i + 1].pos) if i + 1 < len(links) else np.zeros(3)
        body_lines.append(f'{indent}<body name="{link.name}_link" pos="{_fmt(link.pos)}" quat="{_fmt(link.quat)}" gravcomp="1">')
        body_lines.append(
            f'{indent}  <joint name="{link.name}" axis="{_fmt(link.axis)}" range="{link.range[0]:.6f} {link.range[1]:.6f}" '
            'damping="1.0" armature="0.02"/>'
        )
        body_lines.append(f"{indent}  {_link_geom(next_pos, 0.022 if i < 3 else 0.018, link_color)}")
        indent += "  "
    body_lines.append(_gripper_xml(tool_offset, tool_quat, grip, indent))
    for _ in links:
        indent = indent[:-2]
        body_lines.append(f"{indent}</body>")
    actuators = "\n".join(
        f'    <position name="{link.name}" joint="{link.name}" kp="{ARM_KP}" kv="{ARM_KV}" '
        f'ctrlrange="{link.range[0]:.6f} {link.range[1]:.6f}" forcerange="-{ARM_FORCE} {ARM_FORCE}"/>'
        for link in links
    )
    return f"""<!-- Generated by `python -m sim.robot_mjcf`; do not edit by hand. -->
<mujoco model="{name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast"/>
  <worldbody>
    <body name="base_link" pos="0 0 0">
      <geom name="base" type="cylinder" size="0.06 0.02" pos="0 0 0.02" rgba="0.1 0.1 0.1 1" contype="0" conaffinity="0" group="1"/>
{chr(10).join(body_lines)}
    </body>
  </worldbody>
  <equality>
    <joint name="finger_coupling" joint1="left_finger" joint2="right_finger" polycoef="0 1 0 0 0" solref="0.005 1"/>
  </equality>
  <actuator>
{actuators}
    <position name="gripper" joint="left_finger" kp="{GRIPPER_KP}" kv="10" ctrlrange="{grip.finger_min} {grip.finger_max}"
              forcerange="-{GRIPPER_FORCE} {GRIPPER_FORCE}"/>
  </actuator>
</mujoco>
"""


def widowx_mjcf() -> str:
    return build_mjcf("widowx250", WIDOWX_LINKS, WIDOWX_TOOL_OFFSET, np.array([1.0, 0, 0, 0]),
                      WIDOWX_GRIPPER, "0.2 0.2 0.22 1")


def piper_mjcf() -> str:
    # Tool frame: x along the flange z axis (approach), y along flange y: RotY(-pi/2).
    tool_quat = np.array([np.cos(-np.pi / 4), 0, np.sin(-np.pi / 4), 0])
    # Piper's flange is DH frame 6; the gripper's tool frame sits on it.
    return build_mjcf("piper", piper_links(), PIPER_TOOL_OFFSET, tool_quat, PIPER_GRIPPER, "0.85 0.85 0.85 1")


GENERATORS = {"widowx": widowx_mjcf, "piper": piper_mjcf}


def write_assets() -> list[Path]:
    ASSETS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for robot, generate in GENERATORS.items():
        path = ASSETS_DIR / f"{robot}.xml"
        path.write_text(generate())
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_assets():
        print(f"wrote {written}")
