"""The randomly initialised LAM at the paper's feature scale, shared by the benchmarks that time it
(bench_lam.py, bench_pipeline.py): a frozen DINOv2-Base (ViT-B/14 at 224 px; random weights have the real ones'
compute) under a UniVLA-sized MVP-LAM (12 + 12 blocks x 768), or a 1-layer, 32-wide stand-in of the same shape
(``smoke``) for checking the GPU script's plumbing on a CPU."""

from __future__ import annotations

from pathlib import Path


def dinov2_lam_config(directory: Path, smoke: bool = False, **overrides):
    """Save the random DINOv2 backbone under ``directory`` and return the MVP-LAM config that reads it."""
    from transformers import Dinov2Config, Dinov2Model

    from models.lam import LAMConfig, objective_weights

    dino = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64) if smoke else {}
    Dinov2Model(Dinov2Config(image_size=224, patch_size=14, **dino)).save_pretrained(directory)
    dims = (dict(hidden_dim=32, num_heads=2, encoder_depth=1, decoder_depth=1) if smoke
            else dict(hidden_dim=768, num_heads=12, encoder_depth=12, decoder_depth=12, mlp_ratio=4))
    return LAMConfig(**{"feature_source": "dinov2", "backbone": str(directory), "image_size": 224, "objective": "mvp",
                        "loss_weights": objective_weights("mvp"), **dims, **overrides})


def describe(smoke: bool) -> str:
    return "smoke: 1-layer DINOv2 + 1+1 blocks x 32" if smoke else "dinov2-base frozen + 12+12 blocks x 768 (UniVLA size)"
