"""ROS-free VLA policy runtime: load a checkpoint once, turn camera images and an
instruction into actions.

``Policy.step`` returns the model's whole action chunk (chunk, action_dim) in robot
units; ``Policy.act`` is the executor a control loop calls once per control step:
it re-plans every ``replan_every`` steps and blends the overlapping chunks with
temporal ensembling, so the executed action never jumps when a new chunk arrives.
Both only ever return finite actions inside the range seen in the training data.

The checkpoint carries its preprocessing and conventions (cameras, image size,
robot-state input, action normalisation, action convention): callers pass raw
camera frames of any size and the raw robot state, and apply the returned action
with :class:`lam_ros.action_convention.ActionApplier` in ``policy.action_convention``.
:func:`load_policy` opens our VLA checkpoints and LeRobot pretrained-policy
directories (ACT, Diffusion) behind the same interface.

No rclpy here: the ROS 2 node shell wraps this class.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

import numpy as np

from lam_ros.recording.codec import FRAME_CODEC_AUTO, as_recorded, resolve_frame_codec

log = logging.getLogger(__name__)


class NonFiniteActionError(RuntimeError):
    """The model produced NaN or inf: nothing is passed on to the robot."""


class StickyGripper:
    """SIMPLER-style sticky gripper: once the (binarised) gripper command changes, hold the
    new value for ``hold_steps`` control steps, so one noisy prediction mid-grasp cannot
    reopen the hand. ``hold_steps=0`` passes commands through."""

    def __init__(self, hold_steps: int = 0):
        if hold_steps < 0:
            raise ValueError(f"sticky gripper hold must be >= 0 steps, got {hold_steps}")
        self.hold_steps = hold_steps
        self.reset()

    def reset(self) -> None:
        self._value: float | None = None
        self._left = 0

    def __call__(self, value: float) -> float:
        if self._value is not None and self._left > 0:
            self._left -= 1
            return self._value
        if self._value is not None and value != self._value:
            self._left = self.hold_steps - 1
        self._value = value
        return value


class ChunkEnsembler:
    """Temporal ensembling of overlapping action chunks (ACT, Zhao et al. 2023).

    Every chunk predicted at control step ``t0`` proposes actions for steps
    ``t0 .. t0 + chunk - 1``. The executed action at step ``t`` is the weighted mean
    of all proposals for ``t``, weight ``exp(-decay * i)`` with ``i = 0`` for the
    oldest proposal. A new chunk therefore enters with a small weight beside the
    chunks already being executed: the executed trajectory changes gradually
    instead of jumping to the new plan (naive chunk splicing makes the arm jump).
    A negative decay favours the newest chunk instead (faster reaction, less smoothing).
    Hand-written because it is a dozen lines over a deque of arrays.
    """

    def __init__(self, chunk_size: int, action_dim: int, decay: float = 0.1):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not np.isfinite(decay):
            raise ValueError(f"ensemble decay must be finite, got {decay}")
        self.chunk_size = chunk_size
        self.action_dim = action_dim
        self.decay = decay
        self._chunks: deque[tuple[int, np.ndarray]] = deque()

    def reset(self) -> None:
        self._chunks.clear()

    def add(self, chunk: np.ndarray, t0: int) -> None:
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[1] != self.action_dim or chunk.shape[0] < 1:
            raise ValueError(f"chunk must be (L, {self.action_dim}), got {chunk.shape}")
        self._chunks.append((int(t0), chunk))

    def covers(self, t: int) -> bool:
        return any(t0 <= t < t0 + len(c) for t0, c in self._chunks)

    def action(self, t: int) -> np.ndarray:
        # Forget chunks that ended before t.
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= t:
            self._chunks.popleft()
        proposals = [c[t - t0] for t0, c in self._chunks if t0 <= t < t0 + len(c)]
        if not proposals:
            raise ValueError(f"no action chunk covers control step {t}")
        weights = np.exp(-self.decay * np.arange(len(proposals)))
        return (weights[:, None] * np.stack(proposals)).sum(0) / weights.sum()


class ChunkExecutor:
    """The control-step side of a chunking policy, shared by every policy kind.

    A subclass provides ``step(images, instruction, state, **extra) -> (chunk, action_dim)``
    in robot units and sets ``chunk_size``, ``action_dim`` and the valid action range
    ``low``/``high``. :meth:`act` re-plans every ``replan_every`` steps, blends the
    overlapping chunks (``ensemble_decay``, see :class:`ChunkEnsembler`), binarises
    the gripper to the data's open/closed values and applies the sticky gripper.
    """

    def _init_executor(self, chunk_size: int, action_dim: int, low, high, *, ensemble_decay: float = 0.1,
                       replan_every: int = 1, binarize_gripper: bool = True, sticky_gripper: int = 0) -> None:
        if not 1 <= replan_every <= chunk_size:
            raise ValueError(f"replan_every must be in 1..chunk_size={chunk_size}, got {replan_every}")
        self.replan_every = replan_every
        self.binarize_gripper = binarize_gripper
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self._ensembler = ChunkEnsembler(chunk_size, action_dim, ensemble_decay)
        self._sticky = StickyGripper(sticky_gripper)
        self._t = 0
        self._instruction: str | None = None
        self.last_chunk: np.ndarray | None = None

    def step(self, images, instruction: str, state=None, **extra) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def act(self, images: dict[str, np.ndarray], instruction: str, state=None, **extra) -> np.ndarray:
        """The action to execute at this control step, (action_dim,) float32.

        Predicts a new chunk every ``replan_every`` steps (or when nothing covers the
        current step) and returns the temporally ensembled action. A new instruction
        starts a new episode (the old chunks are dropped)."""
        if instruction != self._instruction:
            self.reset()
            self._instruction = instruction
        if self._t % self.replan_every == 0 or not self._ensembler.covers(self._t):
            self._ensembler.add(self.step(images, instruction, state, **extra), self._t)
        action = self._ensembler.action(self._t).astype(np.float32)
        if self.binarize_gripper:
            mid = 0.5 * (self.low[-1] + self.high[-1])
            action[-1] = self._sticky(float(self.high[-1] if action[-1] >= mid else self.low[-1]))
        action = np.clip(action, self.low, self.high)
        if not np.isfinite(action).all():  # cannot happen after step()'s check; never pass one on
            raise NonFiniteActionError("ensembled action is not finite")
        self._t += 1
        return action

    def reset(self) -> None:
        """Start a new episode: forget buffered chunks, the gripper hold and the step counter."""
        self._ensembler.reset()
        self._sticky.reset()
        self._t = 0
        self._instruction = None
        self.last_chunk = None


class Policy(ChunkExecutor):
    """A loaded VLA plus the chunk executor.

    ``frame_codec``: "auto" (default) shows the model each camera frame as its training frames were
    stored: resized to the recorded resolution and passed through the recording's video codec
    (``config.frame_codec``, ``lam_ros.recording.codec``), then through the one resize path to the
    model's input; "off" shows raw frames; a codec name forces that codec (a diagnostic for
    checkpoints saved before the config recorded it)."""

    def __init__(self, model, frame_codec: str | None = FRAME_CODEC_AUTO, **executor_kwargs):
        if model.normalizer is None or model.config.stage != "action":
            raise ValueError(
                "this checkpoint has no action decoder statistics (a stage-1 latent checkpoint?): "
                "finetune it with `lam-ros finetune-vla` first"
            )
        self.model = model.eval()
        self.config = model.config
        self.normalizer = model.normalizer
        self.frame_codec = resolve_frame_codec(frame_codec, self.config.frame_codec)
        low, high = self.normalizer.bounds()
        self._init_executor(self.config.chunk_size, self.config.action_dim, low, high, **executor_kwargs)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        checkpoint_dir: str | Path,
        device: str = "cpu",
        *,
        robot: str | None = None,
        action_dim: int | None = None,
        torch_dtype=None,
        frame_codec: str | None = FRAME_CODEC_AUTO,
        **executor_kwargs,
    ) -> Policy:
        """Load a finetuned VLA checkpoint. ``robot`` / ``action_dim``, when given, must
        match what the checkpoint was trained for. On CUDA the backbone runs in bf16
        unless ``torch_dtype`` says otherwise."""
        import torch

        from models.vla import VLAConfig, load_vla
        from models.vla.model import CONFIG_FILE

        checkpoint_dir = Path(checkpoint_dir)
        if not (checkpoint_dir / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{checkpoint_dir}: not a VLA checkpoint ({CONFIG_FILE} missing)")
        config = VLAConfig.load(checkpoint_dir / CONFIG_FILE)  # cheap checks before loading weights
        if robot is not None and robot != config.robot:
            raise ValueError(f"checkpoint {checkpoint_dir} was trained for robot {config.robot!r}, not {robot!r}")
        if action_dim is not None and action_dim != config.action_dim:
            raise ValueError(
                f"checkpoint {checkpoint_dir} predicts {config.action_dim}-D actions, the robot needs {action_dim}-D"
            )
        if torch_dtype is None and str(device).startswith("cuda"):
            torch_dtype = torch.bfloat16
        model = load_vla(checkpoint_dir, device=device, torch_dtype=torch_dtype)
        model.merge_lora()
        return cls(model, frame_codec=frame_codec, **executor_kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def cameras(self) -> list[str]:
        return list(self.config.cameras)

    @property
    def robot(self) -> str:
        return self.config.robot

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def chunk_size(self) -> int:
        return self.config.chunk_size

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def uses_state(self) -> bool:
        return self.config.state_dim > 0

    @property
    def action_convention(self) -> str:
        return self.config.action_convention

    # ------------------------------------------------------------------ inference
    def _check_images(self, images) -> dict[str, np.ndarray]:
        if not isinstance(images, dict):
            raise ValueError(f"images must be a dict camera -> uint8 (H, W, 3) array, got {type(images).__name__}")
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise ValueError(f"images lack camera(s) {missing}; the checkpoint expects {self.cameras}")
        checked = {}
        for cam in self.cameras:
            img = np.asarray(images[cam])
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
                raise ValueError(f"image {cam!r} must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
            checked[cam] = img
        return checked

    def _as_trained(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Camera frames as the training frames were: at the recorded resolution, through the recording's
        video codec (``frame_codec``); unchanged when the checkpoint was trained on lossless frames."""
        return as_recorded(images, self.frame_codec, self.config.source_image_size)

    def step(self, images: dict[str, np.ndarray], instruction: str, state=None, **extra) -> np.ndarray:
        """One forward pass: (chunk, action_dim) float32 actions in robot units.

        ``state``: the raw robot state (x, y, z, roll, pitch, yaw, gripper), required
        when the checkpoint takes one. Raises ValueError for bad input and
        NonFiniteActionError if the model outputs NaN/inf; returned actions always
        lie within the data's range."""
        images = self._as_trained(self._check_images(images))
        instruction = self.model.check_instruction(instruction)
        states = None if state is None or not self.uses_state else [np.asarray(state, dtype=np.float32)]
        normed = self.model.predict_chunk_normalized([images], [instruction], states)[0]
        if not np.isfinite(normed).all():
            raise NonFiniteActionError(
                f"the policy produced non-finite actions for {instruction!r}; nothing was passed on"
            )
        chunk = self.normalizer.unnormalize(normed)
        chunk = np.clip(chunk, self.low, self.high).astype(np.float32)
        self.last_chunk = chunk
        return chunk


def load_policy(path: str | Path, device: str = "cpu", *, robot: str | None = None, action_dim: int | None = None,
                frame_codec: str | None = FRAME_CODEC_AUTO, **executor_kwargs):
    """Open a policy checkpoint of any supported kind behind one interface
    (``cameras``, ``robot``, ``action_dim``, ``image_size``, ``uses_state``,
    ``action_convention``, ``act(images, instruction, state)``, ``reset()``):
    our VLA checkpoints (``vla_config.json``), LeRobot pretrained-policy
    directories (ACT, Diffusion; :mod:`lam_ros.lerobot_policy`) and the
    privileged-state baseline (:mod:`models.state_policy`, simulator only).
    ``frame_codec`` applies to our VLA checkpoints (:class:`Policy`) and LeRobot policies
    (:class:`lam_ros.lerobot_policy.LeRobotPolicy`), which both record the codec of their training frames."""
    from models.vla.model import CONFIG_FILE

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"policy checkpoint {path} does not exist")
    if (path / CONFIG_FILE).exists():
        return Policy.load(path, device=device, robot=robot, action_dim=action_dim, frame_codec=frame_codec,
                           **executor_kwargs)
    from models.state_policy import StatePolicy, is_state_policy

    if is_state_policy(path):
        return StatePolicy.load(path, robot=robot, action_dim=action_dim, **executor_kwargs)
    from lam_ros.lerobot_policy import LeRobotPolicy, is_lerobot_checkpoint

    if is_lerobot_checkpoint(path):
        return LeRobotPolicy.load(path, device=device, robot=robot, action_dim=action_dim, frame_codec=frame_codec)
    raise ValueError(f"{path} is not a policy checkpoint: expected a lam_ros VLA ({CONFIG_FILE}), a LeRobot "
                     "pretrained-policy directory (config.json + model.safetensors) or a state-policy checkpoint")
