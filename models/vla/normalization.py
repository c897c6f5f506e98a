"""Action normalisation (OpenVLA / FACTS section 5).

The 1st..99th percentile of each of the first ``action_dim - 1`` dimensions maps
to [-1, 1]; the gripper (last dimension) is left untouched. Statistics are computed
from the finetuning data and saved as JSON beside the weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_EPS = 1e-6


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
    def fit(cls, actions: np.ndarray) -> ActionNormalizer:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] == 0 or actions.shape[1] < 2:
            raise ValueError(f"need actions of shape (N, action_dim>=2) to fit normalisation, got {actions.shape}")
        if not np.isfinite(actions).all():
            raise ValueError("actions used to fit the normalisation contain NaN or inf")
        q01 = np.percentile(actions[:, :-1], 1, axis=0)
        q99 = np.percentile(actions[:, :-1], 99, axis=0)
        grip = actions[:, -1]
        return cls(q01.astype(np.float32), q99.astype(np.float32), float(grip.min()), float(grip.max()))

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
