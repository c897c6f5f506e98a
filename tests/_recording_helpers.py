"""Helpers for the recording tests: synthetic camera streams and rosbag2 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame_image(cam_index: int, k: int, h: int = 32, w: int = 32) -> np.ndarray:
    """A flat RGB image whose colour encodes the camera and the frame number."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (k * 7) % 200 + 20
    img[..., 1] = 40 + 80 * cam_index
    img[..., 2] = 200 - (k * 7) % 200
    return img


def make_image_msg(ts, img: np.ndarray, stamp: float, encoding: str = "rgb8", pad: int = 0, frame_id: str = "cam"):
    """A rosbags sensor_msgs/Image from an RGB image, in ``encoding``, with ``pad`` bytes per row."""
    Image = ts.types["sensor_msgs/msg/Image"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    if encoding == "rgb8":
        arr = img
    elif encoding == "bgr8":
        arr = img[..., ::-1]
    elif encoding == "rgba8":
        arr = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    elif encoding == "bgra8":
        arr = np.concatenate([img[..., ::-1], np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    elif encoding == "mono8":
        arr = img[..., :1]
    else:
        raise ValueError(encoding)
    h, w, c = arr.shape
    rows = arr.reshape(h, w * c)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    sec = int(np.floor(stamp))
    header = Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id=frame_id)
    return Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0, step=w * c + pad,
                 data=np.ascontiguousarray(rows).reshape(-1))


def make_compressed_msg(ts, img: np.ndarray, stamp: float, fmt: str = "png"):
    import cv2

    CompressedImage = ts.types["sensor_msgs/msg/CompressedImage"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", img[..., ::-1])
    assert ok
    sec = int(np.floor(stamp))
    header = Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id="cam")
    return CompressedImage(header=header, format=fmt, data=buf.reshape(-1).astype(np.uint8))


def joint_state(ts, stamp: float, position):
    JointState = ts.types["sensor_msgs/msg/JointState"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    sec = int(np.floor(stamp))
    header = Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id="")
    pos = np.asarray(position, np.float64)
    return JointState(header=header, name=[f"j{i}" for i in range(pos.size)], position=pos,
                      velocity=np.zeros(0), effort=np.zeros(0))


def float_array(ts, values):
    F = ts.types["std_msgs/msg/Float64MultiArray"]
    L = ts.types["std_msgs/msg/MultiArrayLayout"]
    return F(layout=L(dim=[], data_offset=0), data=np.asarray(values, np.float64))


def write_bag(path: Path, cameras=("/cam_a/image_raw", "/cam_b/image_raw"), n: int = 12, fps: float = 10.0,
              storage: str = "sqlite3", encodings=None, jitter: float = 0.003, start: float = 100.0,
              h: int = 32, w: int = 32, drop: dict | None = None, with_action: bool = True,
              compressed: tuple = (), extra: list | None = None) -> dict:
    """Write a small synthetic bag: ``n`` frames per camera at ``fps`` with jitter; returns ground truth.

    ``drop`` maps a camera topic to frame numbers left out. ``extra`` is a list of
    (topic, msgtype, t, msg) written too. Ground truth: frame k of camera i shows
    ``frame_image(i, k)``; the state at k is [k, -k]; the command sent after frame k is [k + 0.5, 1].
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    rng = np.random.default_rng(0)
    encodings = encodings or {}
    drop = drop or {}
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    messages = []  # (t, topic, msgtype, msg)
    for i, topic in enumerate(cameras):
        for k in range(n):
            if k in drop.get(topic, ()):
                continue
            t = start + k / fps + float(rng.uniform(-jitter, jitter))
            img = frame_image(i, k, h, w)
            if topic in compressed:
                messages.append((t, topic, "sensor_msgs/msg/CompressedImage", make_compressed_msg(ts, img, t)))
            else:
                messages.append((t, topic, "sensor_msgs/msg/Image",
                                 make_image_msg(ts, img, t, encodings.get(topic, "rgb8"))))
    for k in range(n):
        t = start + k / fps - 0.01
        messages.append((t, "/joint_states", "sensor_msgs/msg/JointState", joint_state(ts, t, [k, -k])))
        if with_action:
            messages.append((start + k / fps + 0.03, "/cmd", "std_msgs/msg/Float64MultiArray",
                             float_array(ts, [k + 0.5, 1.0])))
    for item in extra or []:
        topic, msgtype, t, msg = item
        messages.append((t, topic, msgtype, msg))
    messages.sort(key=lambda m: m[0])
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for t, topic, msgtype, msg in messages:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            writer.write(conns[topic], int(t * 1e9), ts.serialize_cdr(msg, msgtype))
    return {"n": n, "fps": fps, "cameras": list(cameras)}


TINY_CAMS = {"front": (16, 16), "wrist": (16, 16)}
FRAMES_PER_EPISODE = 6


def tiny_frame(ep: int, k: int) -> dict:
    """A frame whose images and state encode (episode, frame), for kill/resume tests."""
    frame = {
        f"observation.images.{cam}": np.full((16, 16, 3), (ep * 37 + k * 11 + i * 90) % 250, np.uint8)
        for i, cam in enumerate(TINY_CAMS)
    }
    frame["observation.state"] = np.array([ep, k], np.float32)
    frame["action"] = np.array([ep, -k], np.float32)
    frame["sync.capture_time"] = np.array([ep * 10 + k * 0.1, ep * 10 + k * 0.1 + 0.001])
    frame["sync.skew"] = np.array([0.001], np.float32)
    frame["sync.held"] = np.array([0.0], np.float32)
    frame["task"] = "kill test"
    return frame


def child_record(root: str, mode: str, resume: bool = False, start_ep: int = 0, commit_every: int = 1) -> None:
    """Run in a subprocess: record episodes forever, printing progress, until killed.

    mode "mid-episode": after committing 3 episodes, stop half-way through the 4th and wait.
    mode "in-commit": hang inside the 3rd commit, after lerobot finalised the files and
    rewrote meta/info.json but before the journal records the episode.
    """
    import sys
    import time

    from lam_ros.recording import writer as w

    if mode == "in-commit":
        real = w._atomic_write_text

        def hanging(path, text):
            if path.name == w.JOURNAL and '"committed_episodes": 3' in text:
                print("HANG", flush=True)
                time.sleep(600)
            real(path, text)

        w._atomic_write_text = hanging
    features = w.build_features(TINY_CAMS, ["ep", "k"], ["a0", "a1"])
    rec = w.RecordingWriter(root, 10, features, robot_type="test", resume=resume, commit_every=commit_every)
    ep = start_ep
    while True:
        for k in range(FRAMES_PER_EPISODE):
            rec.add_frame(tiny_frame(ep, k))
            if mode == "mid-episode" and rec.episodes - start_ep == 3 and k == 2:
                print("MID", flush=True)
                time.sleep(600)
        rec.save_episode()
        print(f"SAVED {ep}", flush=True)
        sys.stdout.flush()
        ep += 1


REPO = Path(__file__).resolve().parents[1]


def run_and_kill(root: Path, mode: str, until: str, resume: bool = False, start_ep: int = 0,
                 commit_every: int = 1) -> list[str]:
    """Start ``child_record`` in a real subprocess, wait for the line ``until``, SIGKILL it."""
    import os
    import signal
    import subprocess
    import sys

    import pytest

    code = (
        f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]; import _recording_helpers as h; "
        f"h.child_record({str(root)!r}, {mode!r}, resume={resume!r}, start_ep={start_ep:d}, commit_every={commit_every:d})"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=REPO)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == until:
                break
        else:
            pytest.fail(f"child exited (rc={proc.wait()}) before {until!r}; output {lines}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return lines


def check_episodes(root: Path, episodes: range) -> None:
    """The dataset at ``root`` holds exactly ``episodes`` (tiny_frame content), readable offline."""
    from lam_ros.recording.writer import load_dataset

    ds = load_dataset(root)
    assert ds.num_episodes == len(episodes)
    assert len(ds) == len(episodes) * FRAMES_PER_EPISODE
    for i, ep in enumerate(episodes):
        for k in (0, FRAMES_PER_EPISODE - 1):
            item = ds[i * FRAMES_PER_EPISODE + k]
            np.testing.assert_allclose(item["observation.state"].numpy(), [ep, k])
            want = tiny_frame(ep, k)
            for cam in TINY_CAMS:
                got = item[f"observation.images.{cam}"].numpy().transpose(1, 2, 0) * 255
                assert np.abs(got - want[f"observation.images.{cam}"]).mean() < 4
