"""Action normalisation (OpenVLA / FACTS section 5).

The 1st..99th percentile of each of the first ``action_dim - 1`` dimensions maps
to [-1, 1]; the gripper (last dimension) is left untouched. Statistics are computed
from the finetuning data and saved as JSON beside the weights.

A dimension whose percentile range is below its floor (``min_range``) is NOT
stretched to full scale: its range is widened symmetrically to the floor. The
scripted expert's roll and pitch deltas, for instance, span about 3e-4 rad of IK
noise; stretched to [-1, 1] they would make 2 of 7 regression targets pure noise.
Floors default to 1 cm per step for translation and 0.05 rad for rotation
(:func:`default_min_range`).

Why not LeRobot's ``meta/stats.json`` q01/q99: those describe every frame of a
whole dataset, while the statistics must describe the frames actually trained on
(``--max-episodes`` subsets, several datasets merged, no-op frames left out).
Computing exact percentiles over a few thousand in-memory actions is one NumPy call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_EPS = 1e-6
TRANSLATION_FLOOR_M = 0.01
ROTATION_FLOOR_RAD = 0.05


def default_min_range(dims: int) -> np.ndarray:
    """Floors for ``dims`` non-gripper dims laid out as [xyz, rpy, ...]."""
    floor = np.full(dims, ROTATION_FLOOR_RAD, dtype=np.float32)
    floor[: min(3, dims)] = TRANSLATION_FLOOR_M
    return floor


def widen_to_floor(q01: np.ndarray, q99: np.ndarray, min_range) -> tuple[np.ndarray, np.ndarray]:
    """Widen each [q01, q99] interval narrower than ``min_range`` symmetrically to ``min_range``."""
    min_range = np.broadcast_to(np.asarray(min_range, dtype=np.float64), q01.shape)
    width = q99 - q01
    pad = np.maximum(min_range - width, 0.0) / 2
    return (q01 - pad).astype(np.float32), (q99 + pad).astype(np.float32)


@dataclass
class ActionNormalizer:
    q01: np.ndarray  # (action_dim - 1,)
    q99: np.ndarray  # (action_dim - 1,)
    gripper_min: float
    gripper_max: float

    @property
    def action_dim(self) -> int:
        return int(self.q01.shape[0]) + 1

    @classmethod
    def fit(cls, actions: np.ndarray, min_range=None) -> ActionNormalizer:
        """Percentiles of ``actions`` (N, D); ``min_range`` per non-gripper dim (default :func:`default_min_range`)."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] == 0 or actions.shape[1] < 2:
            raise ValueError(f"need actions of shape (N, action_dim>=2) to fit normalisation, got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError("actions used to fit the normalisation contain NaN or inf")
        q01 = np.percentile(actions[:, :-1], 1, axis=0)
        q99 = np.percentile(actions[:, :-1], 99, axis=0)
        floor = default_min_range(actions.shape[1] - 1) if min_range is None else min_range
        q01, q99 = widen_to_floor(q01, q99, floor)
        grip = actions[:, -1]
        return cls(q01, q99, float(grip.min()), float(grip.max()))

    def _scale(self) -> np.ndarray:
        return np.maximum(self.q99 - self.q01, _EPS)

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        """Raw actions (..., D) -> normalised, first D-1 dims clipped to [-1, 1]."""
        actions = np.asarray(actions, dtype=np.float32)
        out = actions.copy()
        out[..., :-1] = np.clip(2.0 * (actions[..., :-1] - self.q01) / self._scale() - 1.0, -1.0, 1.0)
        return out

    def unnormalize(self, normed: np.ndarray) -> np.ndarray:
        """Normalised (..., D) -> raw actions; the normalised part is clipped to [-1, 1] first,
        the gripper to the range seen in the data, so the result always lies in the data's range."""
        normed = np.asarray(normed, dtype=np.float32)
        out = normed.copy()
        x = np.clip(normed[..., :-1], -1.0, 1.0)
        out[..., :-1] = (x + 1.0) / 2.0 * self._scale() + self.q01
        out[..., -1] = np.clip(normed[..., -1], self.gripper_min, self.gripper_max)
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of valid raw actions, shape (D,) each."""
        low = np.concatenate([self.q01, [self.gripper_min]]).astype(np.float32)
        high = np.concatenate([self.q01 + self._scale(), [self.gripper_max]]).astype(np.float32)
        return low, high

    def to_dict(self) -> dict:
        return {
            "q01": self.q01.tolist(),
            "q99": self.q99.tolist(),
            "gripper_min": self.gripper_min,
            "gripper_max": self.gripper_max,
            "note": "first D-1 dims: 1st..99th percentile -> [-1, 1]; gripper untouched",
        }

    @classmethod
    def from_dict(cls, data: dict) -> ActionNormalizer:
        return cls(
            np.asarray(data["q01"], dtype=np.float32),
            np.asarray(data["q99"], dtype=np.float32),
            float(data["gripper_min"]),
            float(data["gripper_max"]),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ActionNormalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass
class StateNormalizer:
    """Robot state (N, D) -> [-1, 1] per dim from the 1st..99th percentile, with the same
    range floor as actions (a nearly constant state dim is not amplified), clipped to [-1.5, 1.5]."""

    q01: np.ndarray
    q99: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.q01.shape[0])

    @classmethod
    def fit(cls, states: np.ndarray, min_range: float = TRANSLATION_FLOOR_M) -> StateNormalizer:
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[0] == 0:
            raise ValueError(f"need states of shape (N, D) to fit normalisation, got {states.shape}")
        if not np.isfinite(states).all():
            raise ValueError("states used to fit the normalisation contain NaN or inf")
        q01, q99 = widen_to_floor(np.percentile(states, 1, axis=0), np.percentile(states, 99, axis=0), min_range)
        return cls(q01, q99)

    def normalize(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float32)
        if states.shape[-1] != self.dim:
            raise ValueError(f"state must have {self.dim} values, got shape {states.shape}")
        return np.clip(2.0 * (states - self.q01) / np.maximum(self.q99 - self.q01, _EPS) - 1.0, -1.5, 1.5)

    def to_dict(self) -> dict:
        return {"q01": self.q01.tolist(), "q99": self.q99.tolist(), "note": "1st..99th percentile -> [-1, 1]"}

    @classmethod
    def from_dict(cls, data: dict) -> StateNormalizer:
        return cls(np.asarray(data["q01"], dtype=np.float32), np.asarray(data["q99"], dtype=np.float32))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> StateNormalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))
