"""``gymnasium.Env`` for one robot x task: Bridge delta actions at 5 Hz, multi-view images.

One control step = validate the action, let the arm controller (``sim.controller``)
clamp it and solve IK, then 100 physics steps (500 Hz physics, 5 Hz control).
Episodes last ``max_episode_steps`` (60; 120 for the eggplant task) and end
with ``truncated=True``; ``terminated`` stays False because SIMPLER judges
success at the final step.

Reset: objects are placed from the episode seed (``layout="uniform"``: anywhere in
the reachable box; ``"simpler"``: SIMPLER's 24 configurations, the seed picking
one, see ``sim.tasks.sample_placement``), camera poses optionally
randomised from the same seed, the arm goes home with the gripper open, and
physics runs 0.4 s so the objects settle before the first observation.
Observations: {"images": {view: uint8 (H, W, 3)}, "ee_pose", "gripper",
"joint_pos"}; "images" is absent when the env is built with ``cameras=()``
(physics-only runs such as the expert success table).

Everything derives from the seed, so the same seed gives the same images and
states (MuJoCo is deterministic on one machine).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np

from sim import cameras as cams
from sim.controller import ACTION_DIM, ArmController, validate_vector
from sim.scene import compile_scene
from sim.tasks import LAYOUTS, TaskEvaluator, apply_placement, get_task, sample_placement

CONTROL_HZ = 5.0
SETTLE_TIME = 0.4  # s of physics after placing the objects
ACTION_LOW = np.array([-0.1, -0.1, -0.1, -0.5, -0.5, -0.5, 0.0])
ACTION_HIGH = np.array([0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 1.0])
POSE_BOUND = np.array([2.0, 2.0, 2.0, np.pi, np.pi, np.pi])  # m, rad (Euler angles are wrapped to [-pi, pi])


class SimEnv(gym.Env):
    """Tabletop manipulation with a WidowX 250 or Piper arm (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        robot: str = "widowx",
        task: str = "carrot_on_plate",
        cameras: Sequence[str] | str = ("third_person", "side", "wrist"),
        image_size=(128, 128),
        randomize_cameras: bool = False,
        camera_ranges: Mapping | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        noise=None,
        layout: str = "uniform",
    ):
        from sim.noise import ExogenousNoise
        from sim.robots import get_robot

        self.robot_spec = get_robot(robot)
        self.task = get_task(task)
        self.cameras = cams.check_camera_names(cameras)
        self.image_width, self.image_height = cams.parse_image_size(image_size)
        self.randomize_cameras = bool(randomize_cameras)
        self.camera_ranges = cams.resolve_ranges(camera_ranges)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported (use None or 'rgb_array')")
        self.render_mode = render_mode
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self._default_seed = seed
        if layout not in LAYOUTS:
            raise ValueError(f"unknown placement layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
        self.layout = layout
        self.noise = ExogenousNoise.coerce(noise)  # exogenous noise (sim/noise.py); never changes the physics

        self.model, self.data = compile_scene(self.robot_spec, self.task.objects, self.noise.distractors)
        self.control_hz = CONTROL_HZ
        self.substeps = int(round(1.0 / (CONTROL_HZ * self.model.opt.timestep)))
        self.max_episode_steps = self.task.max_episode_steps
        self.instruction = self.task.instruction
        self.controller = ArmController(self.model, self.data, self.robot_spec, prefix=cams.ROBOT_PREFIX,
                                        control_dt=1.0 / CONTROL_HZ)
        self.evaluator = TaskEvaluator(self.model, self.task, self.robot_spec.finger_geoms, cams.ROBOT_PREFIX)
        self._renderer = cams.MultiViewRenderer(self.model, self.cameras, self.image_width, self.image_height)
        self._nominal_poses = cams.nominal_poses()
        self._cam_ids = {c: self.model.camera(cams.model_camera_name(c)).id for c in cams.CAMERAS}
        self._noise_process = None
        if self.noise.active:
            from sim.noise import NoiseProcess

            self._noise_process = NoiseProcess(self.model, self.noise, self._cam_ids, CONTROL_HZ)

        h, w = self.image_height, self.image_width
        spaces = {
            "ee_pose": gym.spaces.Box(-POSE_BOUND, POSE_BOUND, dtype=np.float64),
            "gripper": gym.spaces.Box(0.0, 1.0, (1,), np.float64),
            "joint_pos": gym.spaces.Box(-2 * np.pi, 2 * np.pi, (6,), np.float64),
        }
        if self.cameras:  # no "images" at all without cameras (gymnasium rejects an empty Dict space)
            spaces["images"] = gym.spaces.Dict(
                {c: gym.spaces.Box(0, 255, (h, w, 3), np.uint8) for c in self.cameras})
        self.observation_space = gym.spaces.Dict(spaces)
        # Nominal Bridge action range; larger deltas are accepted and clamped by the controller.
        self.action_space = gym.spaces.Box(ACTION_LOW, ACTION_HIGH, dtype=np.float64)
        self._step_count = 0
        self._episode_seed: int | None = None
        self._last_metrics: dict[str, bool] = {}
        self._last_obs = None

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._episode_seed is None:
            seed = self._default_seed
        super().reset(seed=seed)
        import mujoco

        self._episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        rng = np.random.default_rng(self._episode_seed)
        placement_rng, camera_rng = rng.spawn(2)

        mujoco.mj_resetData(self.model, self.data)
        self._set_camera_poses(camera_rng)
        # SIMPLER layout: the reset seed picks the configuration (24 consecutive seeds = SIMPLER's 24 episodes)
        self.placement = sample_placement(self.task, placement_rng, layout=self.layout, episode=seed)
        apply_placement(self.model, self.data, self.placement)
        self.controller.reset()
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_step(self.model, self.data, nstep=int(round(SETTLE_TIME / self.model.opt.timestep)))
        mujoco.mj_forward(self.model, self.data)
        self.evaluator.reset(self.data)
        self._step_count = 0
        self._last_metrics = self.evaluator.evaluate(self.data)
        self._ever = {"grasp": False, "consecutive_grasp": False}
        if self._noise_process is not None:
            self._noise_process.reset(self._episode_seed, self.max_episode_steps)
        obs = self._observation()
        info = {
            **self._last_metrics,
            "camera_poses": self.camera_poses(),
            "sim_time": float(self.data.time),
            "step": 0,
            "episode_seed": self._episode_seed,
            "object_poses": self.object_poses(),
        }
        return obs, info

    def _set_camera_poses(self, rng: np.random.Generator) -> None:
        for cam, nominal in self._nominal_poses.items():
            pose = cams.sample_pose(nominal, self.camera_ranges[cam], rng) if self.randomize_cameras else nominal
            cid = self._cam_ids[cam]
            self.model.cam_pos[cid] = pose.pos
            self.model.cam_quat[cid] = pose.quat

    def step(self, action):
        action = validate_vector(action, ACTION_DIM, "action [dx, dy, dz, droll, dpitch, dyaw, gripper]")
        self._check_started()
        return self._advance(self.controller.apply_delta(action))

    def step_absolute(self, pose6, gripper):
        """Move towards an absolute EE pose (base frame xyz + rpy) with a gripper command (1 open, 0 closed)."""
        self._check_started()
        return self._advance(self.controller.apply_absolute(pose6, gripper))

    def _check_started(self) -> None:
        if self._episode_seed is None:
            raise RuntimeError("call reset() before step()")

    def _advance(self, result):
        self.controller.step_physics(self.substeps)
        self._step_count += 1
        self._last_metrics = self.evaluator.evaluate(self.data)
        for key in self._ever:
            self._ever[key] = self._ever[key] or self._last_metrics[key]
        obs = self._observation()
        truncated = self._step_count >= self.max_episode_steps
        info = {
            "applied_action": np.asarray(result.applied_action, dtype=np.float64).copy(),
            "clamped": bool(result.clamped),
            "clamp_reasons": list(result.reasons),
            **self._last_metrics,
            "camera_poses": self.camera_poses(),
            "sim_time": float(self.data.time),
            "step": self._step_count,
        }
        reward = 1.0 if self._last_metrics["success"] else 0.0
        return obs, reward, False, truncated, info

    # ------------------------------------------------------------------ views of the state
    def _observation(self) -> dict:
        obs = {
            "ee_pose": self.controller.ee_pose().astype(np.float64),
            "gripper": np.array([self.controller.gripper_state()], dtype=np.float64),
            "joint_pos": self.controller.joint_positions().astype(np.float64),
        }
        if self._noise_process is not None:
            self._noise_process.apply_scene(self.data, self._step_count)
        if self.cameras:
            obs["images"] = self._renderer.render(self.data)
            if self._noise_process is not None:
                obs["images"] = self._noise_process.apply_images(obs["images"], self._step_count)
        self._last_obs = obs
        return obs

    def state_vector(self, obs: dict | None = None) -> np.ndarray:
        """float32 (7,) [x, y, z, roll, pitch, yaw, gripper] of an observation (default: the last one)."""
        obs = self._last_obs if obs is None else obs
        if obs is None:
            raise RuntimeError("no observation yet: call reset() first")
        return np.concatenate([obs["ee_pose"], obs["gripper"]]).astype(np.float32)

    def camera_poses(self) -> dict[str, np.ndarray]:
        """(7,) xyz + quat wxyz (MuJoCo camera frame, looking along -z) of every view, in the base frame."""
        return {c: cams.camera_world_pose(self.model, self.data, cams.model_camera_name(c)) for c in cams.CAMERAS}

    def camera_intrinsics(self) -> np.ndarray:
        """3x3 pinhole matrix of the external views at this env's resolution."""
        return cams.intrinsics(self.image_width, self.image_height)

    def object_poses(self) -> dict[str, np.ndarray]:
        """Privileged (7,) xyz + quat wxyz of each task object (for experts and tests)."""
        return {n: np.concatenate(self.evaluator.object_pose(self.data, n)) for n in self.evaluator.objects}

    @property
    def step_count(self) -> int:
        return self._step_count

    @property
    def metrics(self) -> dict[str, bool]:
        """The metrics of the current step (as in the last ``info``)."""
        return dict(self._last_metrics)

    def episode_metrics(self) -> dict:
        """SIMPLER's episode summary: success and moved-correct-object now (judged at the final step),
        grasp and consecutive grasp if they happened at any step of the episode."""
        if self._episode_seed is None:
            raise RuntimeError("no episode yet: call reset() first")
        return {
            "success": bool(self._last_metrics["success"]),
            "grasp": bool(self._ever["grasp"]),
            "consecutive_grasp": bool(self._ever["consecutive_grasp"]),
            "moved_correct_object": bool(self._last_metrics["moved_correct_object"]),
            "steps": self._step_count,
        }

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if not self.cameras:
            raise ValueError("render() needs at least one camera; construct the env with cameras=...")
        return cams.tile_views(self._renderer.render(self.data))

    def close(self):
        self._renderer.close()
