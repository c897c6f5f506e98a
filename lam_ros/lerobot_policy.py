"""Run a LeRobot pretrained policy (ACT, Diffusion Policy) behind the same interface as
:class:`lam_ros.policy.Policy`, so the simulator evaluation, ``lam-ros run`` and the
policy node can drive a LeRobot user's policy through our synchronisation and safety layer.

What this class does, and what it leaves to lerobot:

* camera frames pass through the video codec of the training frames first (``frame_codec``,
  as :class:`lam_ros.policy.Policy` does: a model trained on decoded h264 frames scored 2 % on
  raw frames where codec-matched ones gave 23 %);
* camera frames of any size are resized with the project's single preprocessing
  function :func:`models.image_prep.resize_images` to the size the policy was
  trained at (``lam_ros_meta.json``, else the config's image feature shape);
* the observation batch (``observation.images.<cam>`` float [0, 1] CHW,
  ``observation.state``, ``task``) goes through lerobot's saved pre-processor
  (normalisation with the training statistics), ``select_action`` (ACT's chunk
  queue or temporal ensembling, Diffusion's observation history and
  ``n_action_steps`` queue) and the saved post-processor (un-normalisation);
* the result is refused if not finite (:class:`~lam_ros.policy.NonFiniteActionError`;
  lerobot's queues are dropped so the next call re-plans), the gripper optionally
  binarised like :class:`Policy` does, and clipped to the training action range
  (the min/max statistics stored in the post-processor).

``lam_ros_meta.json`` (written by ``lam-ros train-lerobot``) names the robot,
cameras, image size and action convention. A LeRobot directory without it still
loads (cameras and image size come from its config), but a caller that asks for a
robot or an action convention is refused: nothing could confirm them.

No rclpy here.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path

import numpy as np

from lam_ros.policy import NonFiniteActionError
from lam_ros.recording.codec import FRAME_CODEC_AUTO, as_recorded, resolve_frame_codec

log = logging.getLogger(__name__)

META_FILE = "lam_ros_meta.json"
SUPPORTED_TYPES = ("act", "diffusion")
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_lerobot_checkpoint(path: str | Path) -> bool:
    """Cheap test (two small file reads, no torch): is ``path`` a LeRobot pretrained-policy
    directory (``config.json`` with a policy ``type`` next to ``model.safetensors``)?"""
    path = Path(path)
    if not (path / "model.safetensors").is_file():
        return False
    config = _read_json(path / "config.json")
    return bool(config) and isinstance(config.get("type"), str) and "input_features" in config


def _size_tuple(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(v) for v in size)
    return h, w


def describe_checkpoint(path: str | Path) -> dict:
    """What a LeRobot policy directory was trained for, from its JSON files only:
    type, robot, cameras, image_size (height, width), action_dim, uses_state,
    action_convention, state/action names, fps (None where unknown)."""
    path = Path(path)
    if not is_lerobot_checkpoint(path):
        raise FileNotFoundError(f"{path}: not a LeRobot pretrained-policy directory (config.json with a 'type' and model.safetensors)")
    config = _read_json(path / "config.json")
    meta = _read_json(path / META_FILE) or {}
    features = config.get("input_features") or {}
    visual = {k: v for k, v in features.items() if (v or {}).get("type") == "VISUAL"}
    cams_from_config = [k[len(IMAGE_PREFIX):] for k in visual if k.startswith(IMAGE_PREFIX)]
    shapes = {tuple(v["shape"]) for v in visual.values()}
    size_from_config = tuple(next(iter(shapes))[1:]) if len(shapes) == 1 else None
    action = (config.get("output_features") or {}).get(ACTION_KEY) or {}
    cameras = list(meta.get("cameras") or cams_from_config)
    if sorted(cameras) != sorted(cams_from_config):
        raise ValueError(f"{path}: {META_FILE} names cameras {cameras} but the policy config has {cams_from_config}")
    image_size = tuple(meta["image_size"]) if meta.get("image_size") else size_from_config
    return {
        "type": config["type"],
        "robot": meta.get("robot"),
        "cameras": cameras,
        "image_size": _size_tuple(image_size) if image_size else None,
        "action_dim": int(action["shape"][0]) if action.get("shape") else None,
        "uses_state": STATE_KEY in features,
        "action_convention": meta.get("action_convention"),
        "state_names": list(meta.get("state_names") or []),
        "action_names": list(meta.get("action_names") or []),
        "fps": meta.get("fps"),
        "recorded_image_size": _size_tuple(meta["recorded_image_size"]) if meta.get("recorded_image_size") else None,
        "frame_codec": meta.get("frame_codec"),  # None: lossless frames, or a checkpoint trained before it was recorded
        "has_meta": bool(meta),
    }


def _check_request(path: Path, info: dict, *, robot, action_dim, cameras, image_size, action_convention) -> None:
    """One-line ValueErrors when the checkpoint does not fit what the caller runs."""
    if info["type"] not in SUPPORTED_TYPES:
        raise ValueError(f"{path}: LeRobot policy type {info['type']!r} is not supported here (supported: {', '.join(SUPPORTED_TYPES)})")
    if robot is not None:
        if info["robot"] is None:
            raise ValueError(f"{path}: no {META_FILE}, so nothing confirms it was trained for robot {robot!r}; "
                             f"add {META_FILE} with \"robot\" (see docs/lerobot_policies.md)")
        if info["robot"] != robot:
            raise ValueError(f"LeRobot policy {path} was trained for robot {info['robot']!r}, not {robot!r}")
    if action_dim is not None and info["action_dim"] != action_dim:
        raise ValueError(f"LeRobot policy {path} predicts {info['action_dim']}-D actions, the robot needs {action_dim}-D")
    if cameras is not None:
        missing = [c for c in info["cameras"] if c not in list(cameras)]
        if missing:
            raise ValueError(f"LeRobot policy {path} needs camera(s) {missing} (trained on {info['cameras']}); "
                             f"available: {list(cameras)}")
    if image_size is not None and info["image_size"] is not None and _size_tuple(image_size) != info["image_size"]:
        raise ValueError(f"LeRobot policy {path} was trained on {info['image_size'][1]}x{info['image_size'][0]} images (WxH), "
                         f"not {_size_tuple(image_size)[1]}x{_size_tuple(image_size)[0]}")
    if action_convention is not None:
        if info["action_convention"] is None:
            raise ValueError(f"{path}: no {META_FILE}, so nothing confirms its actions are {action_convention!r}")
        if info["action_convention"] != action_convention:
            raise ValueError(f"LeRobot policy {path} outputs {info['action_convention']!r} actions, not {action_convention!r}")


class LeRobotPolicy:
    """A loaded LeRobot ACT / Diffusion policy with :class:`lam_ros.policy.Policy`'s interface."""

    def __init__(self, policy, preprocessor, postprocessor, info: dict, *, binarize_gripper: bool = True, path=None,
                 frame_codec: str | None = FRAME_CODEC_AUTO):
        self.policy = policy.eval()
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.info = dict(info)
        self.path = Path(path) if path is not None else None
        self.binarize_gripper = binarize_gripper
        # as lam_ros.policy.Policy: frames pass through the codec of the training videos before the policy
        self.frame_codec = resolve_frame_codec(frame_codec, self.info.get("frame_codec"))
        self.low, self.high = self._action_range()
        self._instruction: str | None = None
        self.last_chunk: np.ndarray | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "cpu",
        robot: str | None = None,
        action_dim: int | None = None,
        cameras: list[str] | None = None,
        *,
        image_size=None,
        action_convention: str | None = None,
        binarize_gripper: bool = True,
        frame_codec: str | None = FRAME_CODEC_AUTO,
    ) -> LeRobotPolicy:
        """Load a LeRobot pretrained-policy directory. ``robot``, ``action_dim``,
        ``cameras`` (the cameras available: the policy's must be among them),
        ``image_size`` (int or (height, width)) and ``action_convention``, when given,
        must fit the checkpoint: otherwise a one-line ValueError before any weights load.
        ``frame_codec``: "auto" shows the policy each frame through the video codec of its training
        frames (``lam_ros_meta.json``), "off" raw frames, or a named codec."""
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        path = Path(path)
        info = describe_checkpoint(path)
        _check_request(path, info, robot=robot, action_dim=action_dim, cameras=cameras,
                       image_size=image_size, action_convention=action_convention)
        if info["image_size"] is None:
            raise ValueError(f"{path}: cannot tell the image size the policy was trained on")
        config = PreTrainedConfig.from_pretrained(path)
        config.device = str(device)
        policy = get_policy_class(config.type).from_pretrained(path, config=config)
        policy.to(device)
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(path),
            preprocessor_overrides={"device_processor": {"device": str(device)}},
        )
        return cls(policy, preprocessor, postprocessor, info, binarize_gripper=binarize_gripper, path=path,
                   frame_codec=frame_codec)

    def _action_range(self) -> tuple[np.ndarray, np.ndarray]:
        """The training action range: min/max statistics held by the post-processor (near-constant dims
        widened to the normalisation floor by ``training.train_lerobot.floor_stats``)."""
        for step in getattr(self.postprocessor, "steps", []):
            if hasattr(step, "state_dict"):
                state = step.state_dict()
                if f"{ACTION_KEY}.min" in state and f"{ACTION_KEY}.max" in state:
                    low = state[f"{ACTION_KEY}.min"].float().cpu().numpy().reshape(-1)
                    high = state[f"{ACTION_KEY}.max"].float().cpu().numpy().reshape(-1)
                    return low.astype(np.float32), high.astype(np.float32)
        raise ValueError(f"{self.path}: the post-processor holds no action min/max statistics; cannot bound actions")

    # ------------------------------------------------------------------ properties
    @property
    def cameras(self) -> list[str]:
        return list(self.info["cameras"])

    @property
    def robot(self) -> str | None:
        return self.info["robot"]

    @property
    def action_dim(self) -> int:
        return int(self.info["action_dim"])

    @property
    def chunk_size(self) -> int:
        """Actions :meth:`step` returns: ACT's chunk, Diffusion's executed ``n_action_steps``."""
        cfg = self.policy.config
        return int(cfg.chunk_size if self.policy_type == "act" else cfg.n_action_steps)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) the policy was trained on; any input size is resized to it."""
        return self.info["image_size"]

    @property
    def uses_state(self) -> bool:
        return bool(self.info["uses_state"])

    @property
    def action_convention(self) -> str | None:
        return self.info["action_convention"]

    @property
    def policy_type(self) -> str:
        return self.info["type"]

    # ------------------------------------------------------------------ inference
    def _observation(self, images, instruction: str, state) -> dict:
        import torch

        from models.image_prep import resize_images

        if not isinstance(images, dict):
            raise ValueError(f"images must be a dict camera -> uint8 (H, W, 3) array, got {type(images).__name__}")
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise ValueError(f"images lack camera(s) {missing}; the policy expects {self.cameras}")
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be a string, got {type(instruction).__name__}")
        obs = {}
        images = as_recorded({cam: images[cam] for cam in self.cameras}, self.frame_codec, self.info.get("recorded_image_size"))
        for cam in self.cameras:
            img = resize_images(images[cam], self.image_size, name=f"image {cam!r}")
            if img.ndim != 3:
                raise ValueError(f"image {cam!r} must be one (H, W, 3) frame, got shape {img.shape}")
            obs[IMAGE_PREFIX + cam] = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)
        if self.uses_state:
            if state is None:
                names = self.info["state_names"] or "observation.state"
                raise ValueError(f"this LeRobot policy needs the robot state ({names}); pass state=")
            s = np.asarray(state, dtype=np.float32).reshape(-1)
            want = int(self.policy.config.input_features[STATE_KEY].shape[0])
            if s.shape != (want,):
                raise ValueError(f"state must have {want} values, got shape {np.shape(state)}")
            if not np.isfinite(s).all():
                raise ValueError("state holds NaN/inf")
            obs[STATE_KEY] = torch.from_numpy(s.copy())
        obs["task"] = instruction
        return obs

    def _finish(self, actions: np.ndarray, what: str) -> np.ndarray:
        if not np.isfinite(actions).all():
            self.policy.reset()  # drop queued (non-finite) actions: the next call re-plans
            raise NonFiniteActionError(f"the LeRobot policy produced non-finite {what}; nothing was passed on")
        actions = actions.astype(np.float32)
        if self.binarize_gripper:
            mid = 0.5 * (self.low[-1] + self.high[-1])
            actions[..., -1] = np.where(actions[..., -1] >= mid, self.high[-1], self.low[-1])
        return np.clip(actions, self.low, self.high).astype(np.float32)

    def act(self, images: dict[str, np.ndarray], instruction: str, state: np.ndarray | None = None) -> np.ndarray:
        """The action to execute at this control step, (action_dim,) float32, finite, within
        the training range. A new instruction starts a new episode (lerobot's queues reset)."""
        import torch

        if instruction != self._instruction:
            self.reset()
            self._instruction = instruction
        obs = self._observation(images, instruction, state)
        with torch.inference_mode():
            action = self.postprocessor(self.policy.select_action(self.preprocessor(obs)))
        return self._finish(action.float().cpu().numpy().reshape(self.action_dim), "action")

    def step(self, images: dict[str, np.ndarray], instruction: str, state: np.ndarray | None = None) -> np.ndarray:
        """One forward pass: the policy's chunk (chunk_size, action_dim) float32 in robot units.

        Does not advance :meth:`act`'s queues (Diffusion's observation history is
        restored afterwards), so it can be called for inspection at any time."""
        import torch
        from lerobot.policies.utils import populate_queues

        obs = self._observation(images, instruction, state)
        with torch.inference_mode():
            batch = self.preprocessor(obs)
            if self.policy_type == "diffusion":
                saved = {k: deque(q, maxlen=q.maxlen) for k, q in self.policy._queues.items()}
                try:
                    batch = {k: v for k, v in batch.items() if k != ACTION_KEY}  # as select_action does
                    batch["observation.images"] = torch.stack([batch[k] for k in self.policy.config.image_features], dim=-4)
                    populate_queues(self.policy._queues, batch)
                    chunk = self.policy.predict_action_chunk(batch)
                finally:
                    self.policy._queues = saved
            else:
                chunk = self.policy.predict_action_chunk(batch)
            chunk = self.postprocessor(chunk)
        chunk = self._finish(chunk.float().cpu().numpy().reshape(-1, self.action_dim), "action chunk")
        self.last_chunk = chunk
        return chunk

    def reset(self) -> None:
        """Start a new episode: clear lerobot's action / observation queues."""
        self.policy.reset()
        self._instruction = None
        self.last_chunk = None
