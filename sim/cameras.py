"""Scene cameras: nominal poses, Bridge intrinsics, per-episode randomisation, headless rendering.

Three views per scene:

* ``third_person``: the Bridge / SIMPLER over-the-shoulder camera, mounted at
  [0, -0.16, 0.36] from the robot base with SIMPLER's orientation (it looks at
  about (0.33, 0.02, 0) on the table) and the Bridge intrinsics
  fx = fy = 623.588, cx = 319.5, cy = 239.5 at 640x480.
* ``side``: a second fixed external view from the robot's left.
* ``wrist``: ``wrist_cam`` of the robot MJCF (attached as ``robot/wrist_cam``);
  it moves with the gripper and is never randomised.

Intrinsics at other resolutions: the pinhole is scaled with the image height,
fy' = fy * H / 480, which keeps MuJoCo's vertical field of view
fovy = 2 atan(240 / 623.588) = 42.1 deg at every resolution. MuJoCo renders
square pixels, so fx' = fy' and cx' = (W - 1) / 2, cy' = (H - 1) / 2; at any 4:3
resolution this is exactly the Bridge camera scaled, at other aspect ratios the
horizontal field of view follows the aspect ratio (:func:`intrinsics`).

Poses are in the world frame, which is the robot base frame (base at the
origin, table top at z = 0). A pose is (pos xyz, quat wxyz) of the MuJoCo camera
frame: x right, y up, looking along -z.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from collections.abc import Mapping

import numpy as np

from sim.robot_mjcf import mat_to_quat

BRIDGE_WIDTH, BRIDGE_HEIGHT = 640, 480
BRIDGE_FX = BRIDGE_FY = 623.588
BRIDGE_CX, BRIDGE_CY = 319.5, 239.5

CAMERAS: tuple[str, ...] = ("third_person", "side", "wrist")
EXTERNAL_CAMERAS: tuple[str, ...] = ("third_person", "side")
ROBOT_PREFIX = "robot/"

MIN_SIZE = (64, 64)  # (width, height)
MAX_SIZE = (640, 480)


def bridge_fovy_deg() -> float:
    """MuJoCo's vertical field of view of the Bridge camera, in degrees."""
    return math.degrees(2.0 * math.atan((BRIDGE_HEIGHT / 2.0) / BRIDGE_FY))


def intrinsics(width: int, height: int, fovy_deg: float | None = None) -> np.ndarray:
    """3x3 pinhole matrix of a MuJoCo camera rendered at ``width`` x ``height``.

    With the default (Bridge) fovy and a 640x480 image this returns exactly the
    Bridge intrinsics.
    """
    fovy = bridge_fovy_deg() if fovy_deg is None else fovy_deg
    f = (height / 2.0) / math.tan(math.radians(fovy) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def model_camera_name(camera: str) -> str:
    """The MuJoCo camera name of a view name (``wrist`` lives in the robot MJCF)."""
    check_camera_names((camera,))
    return ROBOT_PREFIX + "wrist_cam" if camera == "wrist" else camera


def check_camera_names(cameras) -> tuple[str, ...]:
    """Validate a list of view names; returns it as a tuple without duplicates (order kept)."""
    if isinstance(cameras, str):
        cameras = tuple(c for c in cameras.split(",") if c.strip())
    out: list[str] = []
    for cam in cameras:
        cam = str(cam).strip()
        if cam not in CAMERAS:
            raise ValueError(f"unknown camera {cam!r}; known cameras: {', '.join(CAMERAS)}")
        if cam not in out:
            out.append(cam)
    return tuple(out)


def parse_image_size(size) -> tuple[int, int]:
    """``"128x128"`` / ``(width, height)`` / ``128`` -> (width, height), validated against 64x64..640x480."""
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"image size {size!r} is not WIDTHxHEIGHT, e.g. 128x128")
        width, height = int(parts[0]), int(parts[1])
    elif isinstance(size, (int, np.integer)):
        width = height = int(size)
    else:
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"image size {size!r} is not (width, height)") from None
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise ValueError(
            f"image size {width}x{height} is outside {MIN_SIZE[0]}x{MIN_SIZE[1]}..{MAX_SIZE[0]}x{MAX_SIZE[1]}"
        )
    return width, height


# --------------------------------------------------------------------------- poses


def _quat_to_mat(quat: np.ndarray) -> np.ndarray:
    import mujoco

    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def look_at_quat(pos, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quat (wxyz) of a MuJoCo camera at ``pos`` looking at ``target`` with ``up`` roughly up."""
    pos, target, up = (np.asarray(v, dtype=np.float64) for v in (pos, target, up))
    back = pos - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    return mat_to_quat(np.column_stack([right, cam_up, back]))


def _simpler_bridge_quat() -> np.ndarray:
    """SIMPLER's Bridge camera orientation, converted from SAPIEN to MuJoCo axes.

    SAPIEN cameras look along +x with +z up (y left); MuJoCo cameras look along
    -z with +y up (x right): mj_x = -s_y, mj_y = s_z, mj_z = -s_x.
    """
    sapien_rot = _quat_to_mat(np.array([0.8992917, -0.09263245, 0.35892478, 0.23209205]))
    to_mujoco = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return mat_to_quat(sapien_rot @ to_mujoco)


@dataclass(frozen=True)
class CameraPose:
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]  # wxyz, MuJoCo camera frame

    def as_array(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.pos, float), np.asarray(self.quat, float)])


def nominal_poses() -> dict[str, CameraPose]:
    """The un-randomised poses of the external cameras."""
    side_pos = (0.33, 0.62, 0.34)
    return {
        "third_person": CameraPose((0.0, -0.16, 0.36), tuple(_simpler_bridge_quat())),
        "side": CameraPose(side_pos, tuple(look_at_quat(side_pos, (0.33, 0.0, 0.04)))),
    }


# Per-episode randomisation: uniform offsets in [-r, r] per axis. pos in metres
# (base-frame axes), rot_deg in degrees about the camera's own x (tilt), y (pan)
# and z (roll) axes.
# Optional "pos_min" / "rot_min_deg" make the magnitude uniform in [min, max] (:func:`ood_ranges`).
RANGE_KEYS = ("pos", "rot_deg", "pos_min", "rot_min_deg")
DEFAULT_RANGES: dict[str, dict[str, tuple[float, float, float]]] = {
    "third_person": {"pos": (0.05, 0.05, 0.04), "rot_deg": (4.0, 4.0, 3.0)},
    "side": {"pos": (0.05, 0.05, 0.04), "rot_deg": (4.0, 4.0, 3.0)},
}


def resolve_ranges(camera_ranges: Mapping | None) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Merge user ranges over :data:`DEFAULT_RANGES`, validating names and values."""
    ranges = {cam: dict(r) for cam, r in DEFAULT_RANGES.items()}
    if camera_ranges is None:
        return ranges
    if not isinstance(camera_ranges, Mapping):
        raise ValueError(f"camera_ranges must be a mapping camera -> {{'pos': ..., 'rot_deg': ...}}, got {camera_ranges!r}")
    for cam, spec in camera_ranges.items():
        if cam not in EXTERNAL_CAMERAS:
            raise ValueError(f"camera_ranges: {cam!r} is not a randomisable camera ({', '.join(EXTERNAL_CAMERAS)})")
        if not isinstance(spec, Mapping):
            raise ValueError(f"camera_ranges[{cam!r}] must be a mapping with keys 'pos' and/or 'rot_deg'")
        for key, value in spec.items():
            if key not in RANGE_KEYS:
                raise ValueError(f"camera_ranges[{cam!r}]: unknown key {key!r} (use {', '.join(map(repr, RANGE_KEYS))})")
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (3,))
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"camera_ranges[{cam!r}][{key!r}] must be 3 finite non-negative numbers, got {value!r}")
            ranges[cam][key] = tuple(float(v) for v in arr)
        for low_key, high_key in (("pos_min", "pos"), ("rot_min_deg", "rot_deg")):
            if low_key in ranges[cam] and np.any(np.asarray(ranges[cam][low_key]) > np.asarray(ranges[cam][high_key])):
                raise ValueError(f"camera_ranges[{cam!r}]: {low_key!r} {ranges[cam][low_key]} exceeds "
                                 f"{high_key!r} {ranges[cam][high_key]}")
    return ranges


def ood_ranges(inner: float = 1.0, outer: float = 2.0) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Ranges for out-of-distribution camera poses: every offset's magnitude is between ``inner`` and
    ``outer`` times :data:`DEFAULT_RANGES` (random sign), so no pose falls inside the default range."""
    if not 0 <= inner < outer:
        raise ValueError(f"ood_ranges needs 0 <= inner < outer, got {inner}, {outer}")
    out = {}
    for cam, r in DEFAULT_RANGES.items():
        out[cam] = {"pos": tuple(outer * v for v in r["pos"]), "rot_deg": tuple(outer * v for v in r["rot_deg"]),
                    "pos_min": tuple(inner * v for v in r["pos"]), "rot_min_deg": tuple(inner * v for v in r["rot_deg"])}
    return out


def _axis_angle_mat(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis
    c, s = math.cos(angle), math.sin(angle)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def sample_pose(nominal: CameraPose, ranges: Mapping, rng: np.random.Generator) -> CameraPose:
    """One random pose around ``nominal`` within ``ranges`` (see :data:`DEFAULT_RANGES`)."""
    pos_r = np.asarray(ranges.get("pos", (0, 0, 0)), dtype=np.float64)
    rot_r = np.radians(np.asarray(ranges.get("rot_deg", (0, 0, 0)), dtype=np.float64))
    if "pos_min" in ranges or "rot_min_deg" in ranges:
        # |offset| uniform in [min, max] with a random sign: poses outside an inner (training) range
        pos_lo = np.asarray(ranges.get("pos_min", (0, 0, 0)), dtype=np.float64)
        rot_lo = np.radians(np.asarray(ranges.get("rot_min_deg", (0, 0, 0)), dtype=np.float64))
        dpos = rng.uniform(pos_lo, pos_r) * rng.choice([-1.0, 1.0], 3)
        drot = rng.uniform(rot_lo, rot_r) * rng.choice([-1.0, 1.0], 3)
    else:
        dpos = rng.uniform(-pos_r, pos_r)
        drot = rng.uniform(-rot_r, rot_r)
    rot = _quat_to_mat(np.asarray(nominal.quat))
    # Perturb in the camera's own frame: tilt (x), pan (y), roll (z).
    for axis_index in range(3):
        rot = rot @ _axis_angle_mat(np.eye(3)[axis_index], drot[axis_index])
    return CameraPose(tuple(np.asarray(nominal.pos) + dpos), tuple(mat_to_quat(rot)))


def camera_world_pose(model, data, camera_name: str) -> np.ndarray:
    """(7,) xyz + quat wxyz of a camera in the world (= robot base) frame, from ``data``."""
    import mujoco

    cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name)
    return np.concatenate([data.cam_xpos[cam_id].copy(), mat_to_quat(data.cam_xmat[cam_id])])


# --------------------------------------------------------------------------- rendering


def ensure_headless_gl() -> None:
    """Default to EGL (headless) rendering unless the user chose a backend."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


class MultiViewRenderer:
    """One offscreen ``mujoco.Renderer`` shared by all requested views (same resolution)."""

    def __init__(self, model, cameras, width: int, height: int):
        self.cameras = check_camera_names(cameras)
        self.width, self.height = parse_image_size((width, height))
        self._camera_ids: dict[str, int] = {}
        self._renderer = None
        if not self.cameras:
            return
        ensure_headless_gl()
        import mujoco

        for cam in self.cameras:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, model_camera_name(cam))
            if cam_id < 0:
                raise ValueError(f"camera {cam!r} ({model_camera_name(cam)}) is not in the model")
            self._camera_ids[cam] = cam_id
        # the offscreen framebuffer at the images' size: clearing a 640 x 480 one per view costs the
        # software rasteriser about 2 ms (sim.scene's rendering settings)
        model.vis.global_.offwidth, model.vis.global_.offheight = self.width, self.height
        self._renderer = mujoco.Renderer(model, height=self.height, width=self.width)
        # Sites (the red EE marker, debug frames) are for the viewer, not for camera images.
        self._options = mujoco.MjvOption()
        self._options.sitegroup[:] = 0

    def render(self, data) -> dict[str, np.ndarray]:
        """uint8 (H, W, 3) image per view, freshly allocated."""
        images = {}
        for cam, cam_id in self._camera_ids.items():
            self._renderer.update_scene(data, camera=cam_id, scene_option=self._options)
            images[cam] = self._renderer.render()
        return images

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def tile_views(images: Mapping[str, np.ndarray]) -> np.ndarray:
    """Views side by side in one (H, n*W, 3) image (for videos)."""
    if not images:
        raise ValueError("no camera images to tile (run with at least one camera)")
    return np.concatenate(list(images.values()), axis=1)
