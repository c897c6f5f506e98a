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

from lam_ros.recording.writer import DEFAULT_VCODEC, quiet_libav

# A policy's frame_codec setting: "auto" = the codec its training frames went through (from its checkpoint),
# "off" = raw frames, or a codec name (a diagnostic for checkpoints that do not record one).
FRAME_CODEC_AUTO = "auto"
FRAME_CODEC_OFF = ("off", "none", "")


def check_codec(vcodec: str) -> str:
    """``vcodec`` if lerobot's encoder accepts it, else a ValueError naming it and the choices."""
    from lerobot.datasets.video_utils import VALID_VIDEO_CODECS

    if vcodec not in VALID_VIDEO_CODECS or vcodec == "auto":  # "auto" picks per machine: not a recorded codec
        choices = ", ".join(sorted(VALID_VIDEO_CODECS - {"auto"}))
        raise ValueError(f"unknown video codec {vcodec!r}; lerobot encodes with one of: {choices}")
    return vcodec


def recorded_codec(meta, camera_key: str) -> str | None:
    """The video codec a LeRobot dataset stored camera ``camera_key`` with (``meta/info.json``'s
    ``video.codec``, ``meta`` a ``LeRobotDatasetMetadata``); None for lossless image features."""
    if camera_key not in meta.video_keys:
        return None
    return (meta.features[camera_key].get("info") or {}).get("video.codec")


def resolve_frame_codec(requested: str | None, recorded: str | None) -> str | None:
    """The codec a policy runtime passes camera frames through: ``recorded`` (the checkpoint's) for
    "auto", None for "off" (or nothing recorded), else the named codec, checked by :func:`check_codec`."""
    codec = recorded if requested == FRAME_CODEC_AUTO else requested
    if codec is None or str(codec) in FRAME_CODEC_OFF:
        return None
    return check_codec(str(codec))


def as_recorded(images: dict[str, np.ndarray], vcodec: str | None, source_size=None) -> dict[str, np.ndarray]:
    """Camera frames (camera -> uint8 (H, W, 3)) as a recording stored them: resized to the recorded
    ``source_size`` (height, width) through the one resize path (``models.image_prep``), then through
    ``vcodec``'s encode and decode. ``vcodec`` None returns the frames unchanged."""
    if not vcodec:
        return images
    from models.image_prep import resize_images

    out = {}
    for cam, img in images.items():
        if source_size:
            img = resize_images(img, (int(source_size[0]), int(source_size[1])), name=f"camera {cam!r}")
        out[cam] = round_trip(np.asarray(img)[None], vcodec=vcodec)[0]
    return out


def round_trip(images: np.ndarray, fps: int = 5, vcodec: str = DEFAULT_VCODEC) -> np.ndarray:
    """uint8 (N, H, W, 3) frames -> the same frames after lerobot's encode and decode, as one video
    of N frames (a single frame is coded as a key frame)."""
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
        quiet_libav()  # one video per frame: libx264's statistics would add 8 MB to an evaluation's log
        encode_video_frames(frames_dir, video, fps, vcodec=vcodec, overwrite=True, log_level=None)
        decoded = decode_video_frames(video, [i / fps for i in range(len(images))], 0.5 / fps, "pyav")
    return (decoded.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

