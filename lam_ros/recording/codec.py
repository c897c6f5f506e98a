"""What a recording does to camera frames: lerobot's video encoder and decoder, in memory.

Every recorder stores camera frames as video (``DEFAULT_VCODEC`` through lerobot, which encodes
with its own quality defaults: crf 30, GOP 2, yuv420p), and training decodes them; at run time the
policy sees raw frames. ``round_trip`` reproduces the stored version of given frames with lerobot's
own ``encode_video_frames`` / ``decode_video_frames`` (not a re-implementation of their settings),
so the gap between training and run-time frames can be measured (``benchmarks/vision_probe.py``) and
the policy runtime can show a model run-time frames the way its training frames were
(``lam_ros.policy.Policy``, ``frame_codec``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from lam_ros.recording.writer import DEFAULT_VCODEC


def check_codec(vcodec: str) -> str:
    """``vcodec`` if lerobot's encoder accepts it, else a ValueError naming it and the choices."""
    from lerobot.datasets.video_utils import VALID_VIDEO_CODECS

    if vcodec not in VALID_VIDEO_CODECS or vcodec == "auto":  # "auto" picks per machine: not a recorded codec
        choices = ", ".join(sorted(VALID_VIDEO_CODECS - {"auto"}))
        raise ValueError(f"unknown video codec {vcodec!r}; lerobot encodes with one of: {choices}")
    return vcodec


def round_trip(images: np.ndarray, fps: int = 5, vcodec: str = DEFAULT_VCODEC) -> np.ndarray:
    """uint8 (N, H, W, 3) frames -> the same frames after lerobot's encode and decode, as one video
    of N frames (a single frame is coded as a key frame)."""
    import av
    import torch
    from lerobot.datasets.video_utils import decode_video_frames, encode_video_frames
    from PIL import Image

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3) frames, got {images.dtype} {images.shape}")
    with tempfile.TemporaryDirectory(prefix="lam_ros_codec_") as tmp:
        frames_dir = Path(tmp) / "frames"
        frames_dir.mkdir()
        for i, img in enumerate(images):  # the PNG file names lerobot's encoder globs for
            Image.fromarray(img).save(frames_dir / f"frame-{i:06d}.png", compress_level=0)
        video = Path(tmp) / "video.mp4"
        # libx264 prints about ten lines of statistics per video at libav's default level, which at one
        # video per frame would flood a node's or an evaluation's log (8 MB per evaluation): errors only.
        av.logging.set_level(av.logging.ERROR)
        encode_video_frames(frames_dir, video, fps, vcodec=vcodec, overwrite=True, log_level=None)
        decoded = decode_video_frames(video, [i / fps for i in range(len(images))], 0.5 / fps, "pyav")
    return (decoded.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

