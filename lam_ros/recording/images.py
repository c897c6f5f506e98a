"""ROS image messages to RGB ``uint8`` arrays of shape (H, W, 3), with NumPy.

cv_bridge from apt breaks under NumPy 2 and needs a ROS install, so the raw
``sensor_msgs/Image`` conversion is done here (row ``step`` with padding,
channel order). ``sensor_msgs/CompressedImage`` is decoded with OpenCV.

Depth and 16-bit images (``16UC1``, ``32FC1``, ``mono16``) are REFUSED with a
clear error: LeRobot video features are 8-bit, 3-channel, and a depth map
squeezed into one would be silently wrong. Record depth separately.

The functions take any object with the ``sensor_msgs`` field names (rclpy
messages, rosbags messages, or a ``SimpleNamespace`` in tests).
"""

from __future__ import annotations

import numpy as np


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into a correct RGB frame."""


# encoding -> (channels, permutation to RGB or None for mono)
_RAW_ENCODINGS: dict[str, tuple[int, list[int] | None]] = {
    "rgb8": (3, [0, 1, 2]),
    "bgr8": (3, [2, 1, 0]),
    "rgba8": (4, [0, 1, 2]),
    "bgra8": (4, [2, 1, 0]),
    "mono8": (1, None),
    "8uc1": (1, None),
    "8uc3": (3, [2, 1, 0]),  # OpenCV convention: BGR
}
_DEPTH_ENCODINGS = {"16uc1", "32fc1", "mono16", "16sc1", "32fc3", "64fc1"}
SUPPORTED_ENCODINGS = sorted(_RAW_ENCODINGS)


def _where(topic: str | None) -> str:
    return f" on {topic}" if topic else ""


def image_to_rgb(msg, topic: str | None = None) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` to an (H, W, 3) uint8 RGB array (a copy).

    Handles row padding (``step`` > width x channels). Refuses a ``step`` too
    small for a row, a buffer shorter than ``step`` x ``height`` (the last
    row's padding may be missing), a longer one, an unknown encoding and
    depth encodings, each with an error naming the field and the topic.
    """
    encoding = str(msg.encoding).lower()
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if encoding in _DEPTH_ENCODINGS:
        raise ImageDecodeError(
            f"image encoding {msg.encoding!r}{_where(topic)} is depth / 16-bit data; LeRobot video features are "
            f"8-bit RGB, so depth is refused rather than squeezed into a video: leave this topic out of --cameras"
        )
    if encoding not in _RAW_ENCODINGS:
        raise ImageDecodeError(
            f"unknown image encoding {msg.encoding!r}{_where(topic)}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image{_where(topic)} has height={height} width={width}; both must be > 0")
    channels, order = _RAW_ENCODINGS[encoding]
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(
            f"image{_where(topic)}: step={step} is smaller than width x channels = {width} x {channels} = "
            f"{row_bytes} bytes ({msg.encoding})"
        )
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(), np.uint8)
    needed = step * (height - 1) + row_bytes
    if data.size < needed:
        raise ImageDecodeError(
            f"image{_where(topic)}: data has {data.size} bytes, expected step x height = {step} x {height} = "
            f"{step * height} (truncated image data)"
        )
    if data.size > step * height:
        raise ImageDecodeError(
            f"image{_where(topic)}: data has {data.size} bytes, more than step x height = {step * height}; "
            f"height/step do not describe this buffer"
        )
    if data.size < step * height:  # last row's padding missing: pad so the reshape is uniform
        data = np.concatenate([data, np.zeros(step * height - data.size, np.uint8)])
    rows = data.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    if order is None:
        return np.repeat(rows, 3, axis=2)
    return np.ascontiguousarray(rows[:, :, order])


def compressed_to_rgb(msg, topic: str | None = None) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg / png) to (H, W, 3) uint8 RGB."""
    import cv2  # opencv-python-headless; imported here to keep CLI start-up fast

    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt:
        raise ImageDecodeError(
            f"compressed depth image{_where(topic)} (format {msg.format!r}) is refused: depth is not an image feature"
        )
    if fmt and not any(k in fmt for k in ("jpeg", "jpg", "png")):
        raise ImageDecodeError(f"unknown compressed image format {msg.format!r}{_where(topic)}; supported: jpeg, png")
    buf = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes(), np.uint8)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image{_where(topic)} has no data")
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageDecodeError(
            f"compressed image{_where(topic)} (format {msg.format!r}, {buf.size} bytes) could not be decoded "
            f"(truncated or corrupt data)"
        )
    if decoded.dtype != np.uint8:
        raise ImageDecodeError(f"compressed image{_where(topic)} decodes to {decoded.dtype}; only 8-bit images are supported")
    if decoded.ndim == 2:
        return np.repeat(decoded[:, :, None], 3, axis=2)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def msg_to_rgb(msg, topic: str | None = None) -> np.ndarray:
    """Either kind of image message to RGB (dispatch on its fields)."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_rgb(msg, topic)
    return image_to_rgb(msg, topic)


def stamp_to_sec(stamp) -> float:
    """``builtin_interfaces/Time`` (sec, nanosec) to float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9
