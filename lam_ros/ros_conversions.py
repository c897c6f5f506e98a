"""ROS message <-> NumPy helpers used by the node shells (ROS-free).

Readers take any object with the ROS field names (rclpy messages, rosbags
messages, ``SimpleNamespace``). Writers *fill* a message the caller created
(``fill_pose_stamped(PoseStamped(), ...)``), so this module never imports a
message package and is tested without ROS.

Values written are plain Python ``float``/``int`` and ``array.array`` with the
right type code: rclpy's generated setters reject NumPy arrays for ``float32[]``
sequences and NumPy scalars such as ``np.float32`` for ``float64`` fields.

Image decoding lives in :mod:`lam_ros.recording.images` (``msg_to_rgb``); this
module only encodes RGB frames for publishing (the simulator node).

Latent actions are published as ``std_msgs/{Int64,Float32}MultiArray``, which
have no header; the frame-pair stamp rides in the label of a leading size-1
dimension: ``stamp_ns=<int>`` (see :func:`fill_multiarray`).
"""

from __future__ import annotations

import array
import math

import numpy as np

from scipy.spatial.transform import Rotation

STAMP_LABEL_PREFIX = "stamp_ns="


# ------------------------------------------------------------------- time ---

def stamp_to_sec(stamp) -> float:
    """``builtin_interfaces/Time`` -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_sec_nanosec(t: float) -> tuple[int, int]:
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"stamp must be finite and >= 0 seconds, got {t}")
    ns = int(round(t * 1e9))
    return ns // 10**9, ns % 10**9


def fill_stamp(stamp_msg, t: float):
    stamp_msg.sec, stamp_msg.nanosec = sec_to_sec_nanosec(t)
    return stamp_msg


def fill_header(header, t: float, frame_id: str = ""):
    fill_stamp(header.stamp, t)
    header.frame_id = str(frame_id)
    return header


# ------------------------------------------------------------ quaternions ---

def rpy_to_quat(rpy) -> np.ndarray:
    """Roll/pitch/yaw (extrinsic XYZ) -> quaternion (x, y, z, w) as in geometry_msgs."""
    return Rotation.from_euler("xyz", np.asarray(rpy, dtype=np.float64).reshape(3)).as_quat()


def quat_to_rpy(q) -> np.ndarray:
    """Quaternion (x, y, z, w) -> roll/pitch/yaw; normalises, refuses a zero quaternion."""
    q = np.asarray(q, dtype=np.float64).reshape(4)
    n = float(np.linalg.norm(q))
    if not (n > 1e-9) or not math.isfinite(n):
        raise ValueError(f"invalid orientation quaternion {q.tolist()} (zero or non-finite)")
    return Rotation.from_quat(q / n).as_euler("xyz")


# ------------------------------------------------------------------- pose ---

def fill_pose_stamped(msg, pose6, t: float, frame_id: str = "base_link"):
    """geometry_msgs/PoseStamped from xyz + rpy."""
    pose6 = np.asarray(pose6, dtype=np.float64).reshape(6)
    fill_header(msg.header, t, frame_id)
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pose6[:3])
    o.x, o.y, o.z, o.w = (float(v) for v in rpy_to_quat(pose6[3:]))
    return msg


def pose_stamped_to_pose6(msg) -> tuple[np.ndarray, float, str]:
    """(xyz + rpy, stamp seconds, frame_id) of a PoseStamped."""
    p, o = msg.pose.position, msg.pose.orientation
    rpy = quat_to_rpy([o.x, o.y, o.z, o.w])
    return np.array([p.x, p.y, p.z, *rpy], dtype=np.float64), stamp_to_sec(msg.header.stamp), msg.header.frame_id


# ------------------------------------------------------------ joint state ---

def fill_joint_state(msg, names, positions, t: float, velocities=None, frame_id: str = ""):
    fill_header(msg.header, t, frame_id)
    msg.name = [str(n) for n in names]
    msg.position = array.array("d", np.asarray(positions, dtype=np.float64).tobytes())
    if velocities is not None:
        msg.velocity = array.array("d", np.asarray(velocities, dtype=np.float64).tobytes())
    return msg


def joint_state_to_numpy(msg, names=None) -> tuple[np.ndarray, float]:
    """Positions (in the order of ``names`` if given) and the stamp; names missing -> ValueError."""
    pos = np.asarray(msg.position, dtype=np.float64)
    if names is None:
        return pos, stamp_to_sec(msg.header.stamp)
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"JointState lacks joints {missing}; it has {list(msg.name)}")
    return pos[[index[n] for n in names]], stamp_to_sec(msg.header.stamp)


# ------------------------------------------------------------ multi-array ---

_ARRAY_CODES = {np.dtype(np.float32): "f", np.dtype(np.float64): "d", np.dtype(np.int64): "q", np.dtype(np.int32): "i"}


def fill_multiarray(msg, arr, dim_cls, labels=None, stamp_s: float | None = None, dtype=None):
    """Fill a ``std_msgs/*MultiArray`` with ``arr`` (row-major layout).

    ``dtype`` must match the message (float32 for Float32MultiArray, int64 for
    Int64MultiArray). With ``stamp_s`` a leading size-1 dimension labelled
    ``stamp_ns=<int>`` carries the stamp (these messages have no header).
    """
    a = np.ascontiguousarray(arr, dtype=dtype)
    code = _ARRAY_CODES.get(a.dtype)
    if code is None:
        raise ValueError(f"unsupported multi-array dtype {a.dtype}")
    shape = list(a.shape)
    labels = list(labels) if labels is not None else [f"d{i}" for i in range(len(shape))]
    if len(labels) != len(shape):
        raise ValueError(f"{len(labels)} labels for an array of shape {tuple(shape)}")
    if stamp_s is not None:
        sec, nsec = sec_to_sec_nanosec(stamp_s)
        shape = [1] + shape
        labels = [f"{STAMP_LABEL_PREFIX}{sec * 10**9 + nsec}"] + labels
    dims = []
    for i, (size, label) in enumerate(zip(shape, labels)):
        d = dim_cls()
        d.label = str(label)
        d.size = int(size)
        d.stride = int(np.prod(shape[i:], dtype=np.int64))
        dims.append(d)
    msg.layout.dim = dims
    msg.layout.data_offset = 0
    msg.data = array.array(code, a.tobytes())
    return msg


def multiarray_to_numpy(msg, dtype=np.float32) -> tuple[np.ndarray, float | None]:
    """Array shaped by the layout, and the stamp if one is encoded (leading dim dropped)."""
    data = np.asarray(msg.data, dtype=dtype)
    dims = list(msg.layout.dim)
    stamp = None
    if dims and str(dims[0].label).startswith(STAMP_LABEL_PREFIX):
        stamp = int(str(dims[0].label)[len(STAMP_LABEL_PREFIX):]) * 1e-9
        dims = dims[1:]
    shape = [int(d.size) for d in dims] or [data.size]
    if int(np.prod(shape)) != data.size:
        raise ValueError(f"multi-array layout {shape} does not match {data.size} values")
    return data.reshape(shape), stamp


# ------------------------------------------------------------------ image ---

def fill_image(msg, rgb: np.ndarray, t: float, frame_id: str = ""):
    """sensor_msgs/Image (rgb8) from an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    fill_header(msg.header, t, frame_id)
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    msg.data = array.array("B", rgb.tobytes())
    return msg
