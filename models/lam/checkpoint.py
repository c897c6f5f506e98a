"""LAM checkpoints: ``config.json`` + ``model.safetensors`` (config also in the file's metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import LAMConfig
from .model import LatentActionModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_lam(model: LatentActionModel, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.cfg.save(directory / CONFIG_NAME)
    state = {k: v.detach().contiguous().cpu() for k, v in model.trainable_state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"lam_config": model.cfg.to_json()})
    return directory


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"no LAM weights at {weights} (expected a checkpoint directory with {WEIGHTS_NAME})")
    return weights


def load_weights(model: LatentActionModel, path: str | Path) -> None:
    """Load weights into ``model``; a checkpoint of another architecture raises ValueError naming the fields."""
    weights = _weights_path(path)
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata() or {}
        if "lam_config" not in meta:
            raise ValueError(f"{weights} is not a latent action model checkpoint (no lam_config metadata)")
        saved = LAMConfig.from_dict(json.loads(meta["lam_config"]))
        diff = model.cfg.architecture_diff(saved)
        if diff:
            detail = ", ".join(f"{k}: model {a!r} vs checkpoint {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ValueError(f"checkpoint {weights} was trained with another configuration ({detail})")
        state = {k: f.get_tensor(k) for k in f.keys()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("observer.")]
    if missing or unexpected:
        raise ValueError(f"checkpoint {weights} does not match the model: missing {missing}, unexpected {unexpected}")


def load_lam(path: str | Path, device: str | torch.device = "cpu", backbone: str | None = None) -> LatentActionModel:
    """Rebuild a model from a checkpoint directory (``backbone`` overrides where the frozen backbone is)."""
    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"no LAM checkpoint at {path} (missing {CONFIG_NAME})")
    cfg = LAMConfig.load(path / CONFIG_NAME)
    if backbone:
        cfg.backbone = backbone
    model = LatentActionModel(cfg)
    load_weights(model, path)
    return model.to(device).eval()
