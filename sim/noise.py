"""Exogenous noise: changes in the camera images that the robot's action did not cause.

MVP-LAM's premise (shared/papers/mvp-lam.txt) is that a single-view latent action
model spends its bottleneck on such changes. One frozen :class:`ExogenousNoise`
holds every knob, each with a magnitude (0 = off)::

    noise = ExogenousNoise(camera_motion=0.5, distractors=2, lighting=0.5)
    env = sim.make_env("widowx", "carrot_on_plate", noise=noise)      # or noise="camera_motion=0.5,distractors=2"

Knobs (:data:`KNOBS` lists ranges and units):

* ``camera_motion``: within-episode motion of each external camera (``third_person``,
  ``side``), independent per camera: a slow drift (two sinusoids per axis, 0.03-0.25 Hz,
  amplitude ``2 cm`` / ``2 deg`` x magnitude) plus hand-held shake (an AR(1) process,
  ``1.5 mm`` / ``0.3 deg`` x magnitude per step), on top of the per-episode pose.
  The wrist camera is rigidly mounted and does not move.
* ``distractors``: how many distractor objects (0-4) move on their own on the table,
  outside the task workspace (a lane behind it and one on each side). They are
  kinematic (mocap bodies, position set from time alone) and never collide with
  anything (``contype = conaffinity = 0``), so they cannot push a task object, touch the
  source (the "touches only target or robot" success check) or change the physics.
  ``distractor_speed`` scales how fast they move (1 = about 5-15 cm/s).
* ``lighting``: over-time changes of the lights' intensity (+-35 % x magnitude),
  colour (+-15 % per channel x magnitude), key-light direction and a small flicker.
* ``sensor_noise``: Gaussian pixel noise, std ``8 / 255`` x magnitude, independent per camera.
* ``occlusion``: per camera a dark patch covering ``20 %`` x magnitude of the image that
  drifts across it (a cable or a hand in front of the lens), independent per camera.

Everything is drawn from the episode seed (its own random stream, so the placement and
the per-episode camera poses are the same with and without noise) and precomputed per
control step: the same seed and noise give bit-identical images. Noise never changes the
physics, so the scripted expert's success is unchanged.

Datasets store the setting in ``meta/info.json`` under ``"lam_ros"`` -> ``"exogenous_noise"``
(:meth:`ExogenousNoise.to_dict`); :func:`dataset_noise` reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

METADATA_KEY = "lam_ros"  # our block in a LeRobot dataset's meta/info.json
NOISE_METADATA_KEY = "exogenous_noise"
MAX_DISTRACTORS = 4

# name -> (type, low, high, what the magnitude means)
KNOBS: dict[str, tuple[type, float, float, str]] = {
    "camera_motion": (float, 0.0, 3.0, "within-episode drift + shake of each external camera; 1 = 2 cm / 2 deg drift"),
    "distractors": (int, 0, MAX_DISTRACTORS, "number of self-moving distractor objects on the table"),
    "distractor_speed": (float, 0.0, 3.0, "speed scale of the distractors; 1 = about 5-15 cm/s"),
    "lighting": (float, 0.0, 3.0, "light intensity / colour / direction changes over time; 1 = +-35 % intensity"),
    "sensor_noise": (float, 0.0, 3.0, "Gaussian pixel noise per camera; 1 = std 8/255"),
    "occlusion": (float, 0.0, 1.0, "a drifting dark patch per camera; 1 = 20 % of the image"),
}


def knob_help() -> str:
    """One line per knob, for argparse ``--help`` texts (``%`` escaped)."""
    return "; ".join(f"{name} [{lo:g}..{hi:g}]: {what}" for name, (_, lo, hi, what) in KNOBS.items()).replace("%", "%%")


@dataclass(frozen=True)
class ExogenousNoise:
    """Magnitudes of every kind of exogenous noise (all 0: none). Validated on construction."""

    camera_motion: float = 0.0
    distractors: int = 0
    distractor_speed: float = 1.0
    lighting: float = 0.0
    sensor_noise: float = 0.0
    occlusion: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            kind, lo, hi, _ = KNOBS[f.name]
            value = getattr(self, f.name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"noise knob {f.name!r} must be a number, got {value!r} ({type(value).__name__})")
            if kind is int and float(value) != int(value):
                raise ValueError(f"noise knob {f.name!r} must be a whole number, got {value!r}")
            if not math.isfinite(float(value)) or not lo <= float(value) <= hi:
                raise ValueError(f"noise knob {f.name!r} must be within [{lo:g}, {hi:g}], got {value!r}")
            object.__setattr__(self, f.name, kind(value))

    # -- conversions ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> ExogenousNoise:
        unknown = sorted(set(values) - set(KNOBS))
        if unknown:
            raise ValueError(f"unknown noise knob(s) {', '.join(map(repr, unknown))}; known: {', '.join(KNOBS)}")
        return cls(**dict(values))

    @classmethod
    def parse(cls, text: str) -> ExogenousNoise:
        """``"camera_motion=0.5,distractors=2"`` (``""`` or ``"none"``: no noise)."""
        text = str(text).strip()
        if text.lower() in ("", "none", "0"):
            return cls()
        values: dict[str, float | int] = {}
        for item in text.split(","):
            if not item.strip():
                continue
            name, sep, raw = item.partition("=")
            name, raw = name.strip(), raw.strip()
            if not sep or not raw:
                raise ValueError(f"noise setting {item.strip()!r} is not KNOB=VALUE (e.g. camera_motion=0.5)")
            if name not in KNOBS:
                raise ValueError(f"unknown noise knob {name!r}; known: {', '.join(KNOBS)}")
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"noise knob {name!r} must be a number, got {raw!r}") from None
            if KNOBS[name][0] is int:
                if number != int(number):
                    raise ValueError(f"noise knob {name!r} must be a whole number, got {raw!r}")
                number = int(number)
            values[name] = number
        return cls(**values)

    @classmethod
    def coerce(cls, noise) -> ExogenousNoise:
        """None / ExogenousNoise / mapping / ``"knob=value,..."`` -> ExogenousNoise."""
        if noise is None:
            return cls()
        if isinstance(noise, cls):
            return noise
        if isinstance(noise, Mapping):
            return cls.from_dict(noise)
        if isinstance(noise, str):
            return cls.parse(noise)
        raise ValueError(f"noise must be an ExogenousNoise, a mapping or 'knob=value,...', got {noise!r}")

    @property
    def active(self) -> bool:
        return any((self.camera_motion, self.distractors, self.lighting, self.sensor_noise, self.occlusion))

    def describe(self) -> str:
        """Compact text of the non-default knobs (``"none"`` when inactive)."""
        default = ExogenousNoise()
        parts = [f"{k}={v:g}" for k, v in self.to_dict().items() if v != getattr(default, k)]
        return ",".join(parts) if self.active else "none"


def dataset_noise(root: str | Path) -> ExogenousNoise | None:
    """The noise a dataset was recorded with (``None`` when its metadata does not say)."""
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    block = (info.get(METADATA_KEY) or {}).get(NOISE_METADATA_KEY)
    return None if block is None else ExogenousNoise.from_dict(block)


# --------------------------------------------------------------------------- scene part


@dataclass(frozen=True)
class DistractorSpec:
    kind: str  # sphere | box | cylinder | capsule
    size: tuple[float, ...]
    z: float  # height of the centre above the table
    lane: tuple[tuple[float, float], tuple[float, float]]  # ((x_low, x_high), (y_low, y_high))


# Lanes outside the task workspace (objects live in x 0.22..0.40, |y| <= 0.17 plus footprints).
_LANES = (
    ((0.50, 0.64), (-0.28, 0.28)),  # behind the workspace
    ((0.16, 0.46), (0.26, 0.36)),  # robot's left
    ((0.50, 0.64), (-0.28, 0.28)),  # behind again (second object)
    ((0.16, 0.46), (-0.36, -0.26)),  # robot's right
)
DISTRACTORS: tuple[DistractorSpec, ...] = (
    DistractorSpec("sphere", (0.025,), 0.025, _LANES[0]),
    DistractorSpec("box", (0.02, 0.02, 0.02), 0.02, _LANES[1]),
    DistractorSpec("cylinder", (0.02, 0.03), 0.03, _LANES[2]),
    DistractorSpec("capsule", (0.015, 0.025), 0.015, _LANES[3]),
)
PALETTE = np.array([
    [0.85, 0.15, 0.15], [0.15, 0.35, 0.85], [0.9, 0.9, 0.9], [0.1, 0.1, 0.1], [0.95, 0.55, 0.75],
    [0.3, 0.8, 0.8], [0.6, 0.3, 0.1], [0.55, 0.2, 0.75],
])


def distractor_name(i: int) -> str:
    return f"distractor_{i}"


def add_distractors(spec, count: int) -> None:
    """Add ``count`` kinematic, non-colliding distractor bodies (mocap) to a scene ``MjSpec``."""
    import mujoco

    for i in range(count):
        d = DISTRACTORS[i]
        (x0, x1), (y0, y1) = d.lane
        body = spec.worldbody.add_body(name=distractor_name(i), pos=[(x0 + x1) / 2, (y0 + y1) / 2, d.z], mocap=True)
        geom = body.add_geom(name=distractor_name(i), type=getattr(mujoco.mjtGeom, f"mjGEOM_{d.kind.upper()}"),
                             size=list(d.size) + [0.0] * (3 - len(d.size)), rgba=[*PALETTE[i], 1.0])
        geom.contype = 0
        geom.conaffinity = 0
        if d.kind == "capsule":  # lying on its side
            geom.quat = [0.7071068, 0.7071068, 0, 0]


# --------------------------------------------------------------------------- the process


def _axis_rot(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i] = m[j, j] = c
    m[i, j], m[j, i] = -s, s
    return m


def _drift(rng: np.random.Generator, t: np.ndarray, dims: int, amplitude: float, fmin: float = 0.03,
           fmax: float = 0.25) -> np.ndarray:
    """(len(t), dims) sum of two random sinusoids per dim, peak about ``amplitude``."""
    out = np.zeros((len(t), dims))
    for _ in range(2):
        amp = rng.uniform(0.25, 0.5, dims) * amplitude
        freq = rng.uniform(fmin, fmax, dims)
        phase = rng.uniform(0, 2 * np.pi, dims)
        out += amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
    return out


def _ar1(rng: np.random.Generator, steps: int, dims: int, sigma: float, rho: float = 0.6) -> np.ndarray:
    eps = rng.normal(0.0, sigma, (steps, dims))
    out = np.zeros((steps, dims))
    for i in range(1, steps):
        out[i] = rho * out[i - 1] + eps[i]
    return out


class NoiseProcess:
    """Applies an :class:`ExogenousNoise` to one compiled scene, step by step.

    ``reset(seed, steps)`` precomputes every trajectory of the episode;
    ``apply_scene(data, step)`` moves cameras, lights and distractors before a render;
    ``apply_images(images, step)`` adds per-camera sensor noise and occlusion.
    """

    def __init__(self, model, noise: ExogenousNoise, camera_ids: Mapping[str, int], control_hz: float):
        import mujoco

        self.model, self.noise, self.control_hz = model, noise, control_hz
        self.external = {c: camera_ids[c] for c in ("third_person", "side")}
        self._light_diffuse = model.light_diffuse.copy()
        self._light_dir = model.light_dir.copy()
        self._head = (model.vis.headlight.ambient.copy(), model.vis.headlight.diffuse.copy())
        self._mocap = [int(model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, distractor_name(i))])
                       for i in range(noise.distractors)]
        self._geoms = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, distractor_name(i))
                       for i in range(noise.distractors)]
        self._bodies = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, distractor_name(i))
                        for i in range(noise.distractors)]
        for cid in self.external.values():
            if model.cam_bodyid[cid] != 0:
                raise ValueError("camera motion needs the external cameras on the world body")
        self._seed = 0
        self._steps = 0

    def reset(self, seed: int, steps: int) -> None:
        """Draw the episode's trajectories; call after the per-episode camera poses are set."""
        n = self.noise
        self._seed, self._steps = int(seed), int(steps) + 1
        rng = np.random.default_rng([self._seed, 0x6E6F697365])
        cam_rng, light_rng, dist_rng, occ_rng = rng.spawn(4)
        t = np.arange(self._steps) / self.control_hz
        self._t = t
        self._base = {c: (self.model.cam_pos[cid].copy(), self._quat_mat(self.model.cam_quat[cid]))
                      for c, cid in self.external.items()}
        # cameras: drift + shake, independently per camera
        self._cam = {}
        for c, r in zip(self.external, cam_rng.spawn(len(self.external))):
            m = n.camera_motion
            pos = _drift(r, t, 3, 0.02 * m) + _ar1(r, self._steps, 3, 0.0015 * m)
            rot = _drift(r, t, 3, math.radians(2.0) * m) + _ar1(r, self._steps, 3, math.radians(0.3) * m)
            self._cam[c] = (pos, rot)
        # lights: intensity, colour, direction, flicker
        m = n.lighting
        self._gain = 1.0 + _drift(light_rng, t, 1, 0.35 * m, 0.02, 0.15)[:, 0] + light_rng.normal(0, 0.03 * m, self._steps)
        self._gain = np.clip(self._gain, 0.15, None)
        self._tint = np.clip(1.0 + _drift(light_rng, t, 3, 0.15 * m, 0.02, 0.1), 0.3, None)
        self._sway = _drift(light_rng, t, 2, 0.3 * m, 0.02, 0.1)
        # distractors: Lissajous paths inside their lanes, spin, colour per episode
        self._dist = []
        for i, r in enumerate(dist_rng.spawn(max(1, n.distractors))[: n.distractors]):
            (x0, x1), (y0, y1) = DISTRACTORS[i].lane
            centre, half = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([(x1 - x0) / 2, (y1 - y0) / 2])
            freq = r.uniform(0.02, 0.06, 2) * n.distractor_speed * 2 * np.pi
            phase = r.uniform(0, 2 * np.pi, 2)
            # at speed 1 a lane is crossed in about 8-25 s (peak speed up to about 10 cm/s)
            xy = centre + half * np.sin(freq * t[:, None] + phase)
            z = DISTRACTORS[i].z + 0.015 * np.abs(np.sin(n.distractor_speed * r.uniform(0.3, 0.8) * np.pi * t))
            yaw = r.uniform(-np.pi, np.pi) + n.distractor_speed * r.uniform(-1.0, 1.0) * t
            self._dist.append((np.column_stack([xy, z]), yaw))
            self.model.geom_rgba[self._geoms[i], :3] = PALETTE[r.integers(len(PALETTE))]
        # occlusion patches: centre paths in image coordinates (fractions), colour
        self._occ = {}
        for c, r in zip(("third_person", "side", "wrist"), occ_rng.spawn(3)):
            centre = 0.5 + _drift(r, t, 2, 0.8, 0.03, 0.12)
            self._occ[c] = (np.clip(centre, 0.0, 1.0), r.uniform(10, 60, 3).astype(np.uint8), r.uniform(0.5, 2.0))

    @staticmethod
    def _quat_mat(quat) -> np.ndarray:
        import mujoco

        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
        return mat.reshape(3, 3)

    def _index(self, step: int) -> int:
        return min(int(step), self._steps - 1)

    def apply_scene(self, data, step: int) -> None:
        """Move cameras, lights and distractors to their pose at control step ``step``."""
        from sim.robot_mjcf import mat_to_quat

        i, n, model = self._index(step), self.noise, self.model
        if n.camera_motion > 0:
            for c, cid in self.external.items():
                pos, rot = self._cam[c]
                base_pos, base_rot = self._base[c]
                r = base_rot
                for axis in range(3):
                    r = r @ _axis_rot(axis, rot[i, axis])
                model.cam_pos[cid] = base_pos + pos[i]
                model.cam_quat[cid] = mat_to_quat(r)
        if n.lighting > 0:
            model.light_diffuse[:] = np.clip(self._light_diffuse * self._gain[i] * self._tint[i], 0.0, 1.0)
            direction = self._light_dir.copy()
            direction[0, :2] += self._sway[i]
            model.light_dir[:] = direction
            model.vis.headlight.ambient[:] = np.clip(self._head[0] * (0.5 + 0.5 * self._gain[i]) * self._tint[i], 0, 1)
            model.vis.headlight.diffuse[:] = np.clip(self._head[1] * self._gain[i] * self._tint[i], 0, 1)
        for k, (path, yaw) in enumerate(self._dist):
            data.mocap_pos[self._mocap[k]] = path[i]
            data.mocap_quat[self._mocap[k]] = [math.cos(yaw[i] / 2), 0.0, 0.0, math.sin(yaw[i] / 2)]
        self._place_for_render(data)

    def _place_for_render(self, data) -> None:
        """Write the world poses the renderer reads for exactly what the noise moved: the distractor bodies
        and geoms, the external cameras and the key light. Calling ``mj_kinematics`` instead would also
        refresh every other body from ``qpos`` (after ``mj_step`` they lag one substep behind), so privileged
        reads such as the expert's object poses would change in the last bits and trajectories would drift
        apart from the noise-free run; this way the physics and every state read stay bit-identical."""
        model = self.model
        for k, mocap in enumerate(self._mocap):
            body, geom = self._bodies[k], self._geoms[k]
            pos, quat = data.mocap_pos[mocap].copy(), data.mocap_quat[mocap].copy()
            rot = self._quat_mat(quat)
            data.xpos[body], data.xquat[body], data.xmat[body] = pos, quat, rot.ravel()
            data.geom_xpos[geom] = pos + rot @ model.geom_pos[geom]
            data.geom_xmat[geom] = (rot @ self._quat_mat(model.geom_quat[geom])).ravel()
        if self.noise.camera_motion > 0:
            for cid in self.external.values():  # world-fixed cameras: world pose = model pose
                data.cam_xpos[cid] = model.cam_pos[cid]
                data.cam_xmat[cid] = self._quat_mat(model.cam_quat[cid]).ravel()
        if self.noise.lighting > 0:  # world-fixed lights: direction = model direction, normalised
            for lid in range(model.nlight):
                if model.light_bodyid[lid] == 0:
                    data.light_xdir[lid] = model.light_dir[lid] / np.linalg.norm(model.light_dir[lid])

    def apply_images(self, images: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
        n = self.noise
        if not (n.sensor_noise or n.occlusion):
            return images
        i = self._index(step)
        out = {}
        for c, img in images.items():
            img = img.copy()
            h, w = img.shape[:2]
            if n.occlusion > 0:
                centre, colour, aspect = self._occ[c]
                area = 0.2 * n.occlusion * h * w
                ph = max(1, int(round(math.sqrt(area / aspect))))
                pw = max(1, int(round(area / ph)))
                cy, cx = int(centre[i, 0] * h), int(centre[i, 1] * w)
                img[max(0, cy - ph // 2): cy - ph // 2 + ph, max(0, cx - pw // 2): cx - pw // 2 + pw] = colour
            if n.sensor_noise > 0:
                cam_index = ("third_person", "side", "wrist").index(c)
                rng = np.random.default_rng([self._seed, int(step), cam_index, 0x73656E73])
                noisy = img.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * (8.0 * n.sensor_noise)
                img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
            out[c] = img
        return out


# --------------------------------------------------------------------------- dataset metadata


def recording_metadata(env, root: str | Path | None = None, resume: bool = False) -> dict:
    """What a recording stores under ``"lam_ros"`` in meta/info.json about its images' conditions:
    ``exogenous_noise`` (the knobs) and ``camera_randomization`` (per-episode pose ranges).

    With ``resume`` on an existing dataset recorded with other settings, raises a ValueError naming both:
    one dataset holds one noise setting, so an evaluation can tell which it saw."""
    base = getattr(env, "unwrapped", env)
    meta = {
        NOISE_METADATA_KEY: base.noise.to_dict(),
        "camera_randomization": {
            "randomize": bool(base.randomize_cameras),
            "ranges": {c: {k: list(v) for k, v in r.items()} for c, r in base.camera_ranges.items()},
        },
    }
    info_path = Path(root) / "meta" / "info.json" if root is not None else None
    if resume and info_path is not None and info_path.is_file():
        old = (json.loads(info_path.read_text()).get(METADATA_KEY) or {})
        if NOISE_METADATA_KEY in old and old[NOISE_METADATA_KEY] != meta[NOISE_METADATA_KEY]:
            raise ValueError(
                f"cannot resume {root}: it was recorded with exogenous noise "
                f"{ExogenousNoise.from_dict(old[NOISE_METADATA_KEY]).describe()}, not {base.noise.describe()}")
        if "camera_randomization" in old and old["camera_randomization"] != meta["camera_randomization"]:
            raise ValueError(f"cannot resume {root}: it was recorded with other camera randomisation settings "
                             f"({old['camera_randomization']})")
    return meta
