"""Privileged-state baseline: true object poses + end-effector state -> action chunk (a small MLP).

The second rung of the policy ladder (docs/policy_ladder.md): it sees what no
camera-based policy can (exact object positions and orientations from the
simulator), with the same labels, action normalisation, chunking, executor and
closed-loop evaluation as the VLA. If it fails, the labels, the action
convention or the evaluation are wrong, not the vision. Simulator only: it needs
``observation.environment_state`` (recorded by ``record-sim``) at training time
and the simulator's object poses at run time.

Checkpoint: ``state_policy.json`` (config + normalisation) + ``model.safetensors``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lam_ros.policy import ChunkExecutor, NonFiniteActionError
from models.vla.normalization import ActionNormalizer, StateNormalizer

CONFIG_FILE = "state_policy.json"
WEIGHTS_FILE = "model.safetensors"
POSE_SIZE = 7  # xyz + quaternion wxyz per object
RELATIVE_SCALE = 10.0  # object - EE offsets in decimetres: order 1 over the workspace


def is_state_policy(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).exists()


def object_features(env_state: np.ndarray) -> np.ndarray:
    """(..., 7 * n_objects) poses -> (..., 5 * n_objects): xyz + (cos, sin) of 2*yaw per object.

    Doubling the yaw makes an elongated object's two symmetric orientations one feature."""
    env_state = np.asarray(env_state, dtype=np.float32)
    if env_state.shape[-1] % POSE_SIZE:
        raise ValueError(f"environment state must hold {POSE_SIZE} values per object, got {env_state.shape[-1]}")
    poses = env_state.reshape(*env_state.shape[:-1], -1, POSE_SIZE)
    w, x, y, z = (poses[..., i] for i in range(3, 7))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    feats = np.concatenate([poses[..., :3], np.cos(2 * yaw)[..., None], np.sin(2 * yaw)[..., None]], axis=-1)
    return feats.reshape(*env_state.shape[:-1], -1).astype(np.float32)


@dataclass
class StatePolicyConfig:
    robot: str = "widowx"
    state_dim: int = 7
    env_state_dim: int = 14
    action_dim: int = 7
    chunk_size: int = 5
    hidden: int = 512
    layers: int = 3
    tasks: list[str] = field(default_factory=list)  # one-hot task conditioning (instruction strings)
    # Also feed each object's position relative to the end effector (object xyz - EE xyz, in decimetres).
    relative: bool = False
    action_convention: str = "bridge_delta"
    action_stats: dict = field(default_factory=dict)
    state_stats: dict = field(default_factory=dict)

    @property
    def input_dim(self) -> int:
        per_object = 8 if self.relative else 5
        return self.state_dim + self.env_state_dim // POSE_SIZE * per_object + len(self.tasks)


class StateMLP(nn.Module):
    def __init__(self, cfg: StatePolicyConfig):
        super().__init__()
        dims = [cfg.input_dim] + [cfg.hidden] * cfg.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        layers.append(nn.Linear(dims[-1], cfg.chunk_size * cfg.action_dim))
        self.net = nn.Sequential(*layers)
        self.chunk_size, self.action_dim = cfg.chunk_size, cfg.action_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1, self.chunk_size, self.action_dim)


class StatePolicy(ChunkExecutor):
    """The runtime side: ``act(images, instruction, state, env_state=...)`` like every policy."""

    image_size = None  # no cameras
    uses_state = True
    needs_env_state = True  # the simulator's object poses, passed as act(..., env_state=...)

    def __init__(self, cfg: StatePolicyConfig, model: StateMLP, **executor_kwargs):
        self.config = cfg
        self.model = model.eval()
        self.normalizer = ActionNormalizer.from_dict(cfg.action_stats)
        self.state_normalizer = StateNormalizer.from_dict(cfg.state_stats)
        low, high = self.normalizer.bounds()
        self._init_executor(cfg.chunk_size, cfg.action_dim, low, high, **executor_kwargs)

    cameras = property(lambda self: [])
    robot = property(lambda self: self.config.robot)
    action_dim = property(lambda self: self.config.action_dim)
    chunk_size = property(lambda self: self.config.chunk_size)
    action_convention = property(lambda self: self.config.action_convention)

    def features(self, state, env_state, instructions) -> np.ndarray:
        state = np.atleast_2d(np.asarray(state, dtype=np.float32))
        env_state = np.atleast_2d(np.asarray(env_state, dtype=np.float32))
        if env_state.shape[-1] != self.config.env_state_dim:
            raise ValueError(f"environment state must have {self.config.env_state_dim} values, got {env_state.shape[-1]}")
        onehot = np.zeros((len(state), len(self.config.tasks)), np.float32)
        for i, text in enumerate(instructions):
            if text not in self.config.tasks:
                raise ValueError(f"instruction {text!r} was not in training; known: {self.config.tasks}")
            onehot[i, self.config.tasks.index(text)] = 1.0
        parts = [self.state_normalizer.normalize(state), object_features(env_state), onehot]
        if self.config.relative:
            objects = env_state.reshape(len(env_state), -1, POSE_SIZE)[..., :3]
            parts.append(((objects - state[:, None, :3]) * RELATIVE_SCALE).reshape(len(state), -1))
        return np.concatenate(parts, axis=1)

    def step(self, images, instruction: str, state=None, env_state=None, **extra) -> np.ndarray:
        if state is None or env_state is None:
            raise ValueError("the privileged-state policy needs the robot state and the objects' poses (simulator only)")
        x = torch.from_numpy(self.features(state, env_state, [instruction]))
        with torch.inference_mode():
            normed = self.model(x)[0].numpy()
        if not np.isfinite(normed).all():
            raise NonFiniteActionError("the state policy produced non-finite actions; nothing was passed on")
        chunk = np.clip(self.normalizer.unnormalize(normed), self.low, self.high).astype(np.float32)
        self.last_chunk = chunk
        return chunk

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=1) + "\n")
        save_model(self.model, str(directory / WEIGHTS_FILE))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, robot: str | None = None, action_dim: int | None = None,
             **executor_kwargs) -> StatePolicy:
        from safetensors.torch import load_model

        directory = Path(directory)
        cfg = StatePolicyConfig(**json.loads((directory / CONFIG_FILE).read_text()))
        if robot is not None and robot != cfg.robot:
            raise ValueError(f"state policy {directory} was trained for robot {cfg.robot!r}, not {robot!r}")
        if action_dim is not None and action_dim != cfg.action_dim:
            raise ValueError(f"state policy {directory} predicts {cfg.action_dim}-D actions, the robot needs {action_dim}-D")
        model = StateMLP(cfg)
        load_model(model, str(directory / WEIGHTS_FILE))
        return cls(cfg, model, **executor_kwargs)
