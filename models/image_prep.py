"""The one image preprocessing path of lam_ros: camera frame -> model input size.

Training (LAM and VLA datasets, decoded at the recorded resolution) and inference
(the latent-action and policy runtimes, fed raw camera images of any size) both
call :func:`resize_images`, so a model never sees pixels prepared differently
from the ones it was trained on. The whole frame is resized (no crop): the
simulator's square renders cover the camera's full field of view, so a 640x480
camera frame squeezed to a square matches what training saw.
"""

from __future__ import annotations

import numpy as np


def _check(images, name: str) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 RGB images, got dtype {x.dtype}")
    if x.ndim not in (3, 4) or x.shape[-1] != 3 or x.shape[-2] < 1 or x.shape[-3] < 1:
        raise ValueError(f"{name}: expected (H, W, 3) or (B, H, W, 3) RGB images, got shape {x.shape}")
    return x


def resize_images(images, size: int | tuple[int, int], name: str = "image") -> np.ndarray:
    """uint8 (H, W, 3) or (B, H, W, 3) -> uint8 at ``size`` (an int for square, or (height, width)).

    Bilinear with antialiasing (torch), rounded back to uint8; frames already at the
    target size are returned unchanged. ``name`` names the input in errors."""
    import torch
    import torch.nn.functional as F

    x = _check(images, name)
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"{name}: target size must be positive, got {size}")
    if x.shape[-3:-1] == (h, w):
        return x
    single = x.ndim == 3
    t = torch.from_numpy(np.ascontiguousarray(x if not single else x[None])).permute(0, 3, 1, 2).float()
    t = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    out = t.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out[0] if single else out


def resize_views(frames: dict, size, name: str = "view") -> dict:
    """{view: images} -> the same dict with every view resized by :func:`resize_images`."""
    return {v: resize_images(x, size, name=f"{name} {v!r}") for v, x in frames.items()}
