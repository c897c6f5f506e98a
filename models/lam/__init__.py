"""Latent action models (UniVLA / MVP-LAM style) with self, cross-view, AC and cycle objectives."""

from .checkpoint import load_lam, load_weights, save_lam
from .config import LAMConfig, objective_weights
from .model import LatentActionModel
from .objectives import LatentBuffer, compute_losses
from .quantizer import LatentQuantizer

__all__ = [
    "LAMConfig", "LatentActionModel", "LatentBuffer", "LatentQuantizer", "compute_losses",
    "load_lam", "load_weights", "objective_weights", "save_lam",
]
