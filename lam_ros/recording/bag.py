"""rosbag2 (sqlite3 or mcap) to LeRobot, with rosbags: no ROS install needed.

Each bag is one episode. Messages are read in log-time order and streamed
through the shared sync core; camera stamps come from the message headers,
headerless messages (e.g. ``Float64MultiArray`` commands) use the log time.

State/action values are taken from common message types:
``sensor_msgs/JointState`` (position), ``std_msgs/Float{32,64}MultiArray``
(data), ``interbotix_xs_msgs/JointGroupCommand`` (cmd), or any message with a
``position`` / ``data`` / ``cmd`` array. The action of frame k is the last
command logged in ``(t_k, t_k + 1/fps]`` (the command that acted on that
frame), else the one in effect at ``t_k``. Record the topic that carries what
was actually sent to the robot (after clamping), not the policy's request.
Without an action topic, the action of frame k is the state of frame k+1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from lam_ros.recording.episode import EpisodeAssembler, SignalBuffer
from lam_ros.recording.images import ImageDecodeError, msg_to_rgb, stamp_to_sec
from lam_ros.recording.report import RecordingReport
from lam_ros.recording.writer import DEFAULT_VCODEC, RecordingWriter, build_features


IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class BagError(ValueError):
    """A bag that cannot be converted as asked (missing topic, wrong type...)."""


def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """Expand arguments: a bag folder (has metadata.yaml) is one bag; another folder holds bags."""
    bags: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"bag path {p} does not exist")
        if (p / "metadata.yaml").is_file() or p.is_file():
            bags.append(p)
        elif p.is_dir():
            found = sorted(q for q in p.iterdir() if (q / "metadata.yaml").is_file())
            if not found:
                raise BagError(f"{p} is neither a rosbag2 folder (no metadata.yaml) nor a folder of bags")
            bags += found
    if not bags:
        raise BagError("no bags given")
    return bags


def camera_name(topic: str) -> str:
    """``/cam_a/image_raw`` -> ``cam_a`` (a LeRobot key may not contain '/' or '.')."""
    parts = [p for p in topic.strip("/").split("/") if p and p not in ("image_raw", "image", "compressed", "image_color", "image_rect_color")]
    name = "_".join(parts) or topic.strip("/").replace("/", "_")
    return name.replace(".", "_") or "camera"


def vector_of(msg, topic: str) -> tuple[np.ndarray, list[str] | None]:
    """Numeric vector (and names, when the message has them) from a state/command message."""
    for attr in ("position", "cmd", "data"):
        if hasattr(msg, attr):
            value = np.asarray(getattr(msg, attr), dtype=np.float64).reshape(-1)
            names = list(msg.name) if attr == "position" and hasattr(msg, "name") and len(msg.name) == value.size else None
            return value, names
    raise BagError(f"topic {topic}: message type {type(msg).__name__} has no position/cmd/data array to record")


def _msg_time(msg, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    if header is not None and hasattr(header, "stamp"):
        t = stamp_to_sec(header.stamp)
        if t > 0:
            return t
    return log_ns * 1e-9


@dataclass
class BagOptions:
    cameras: list[str]  # image topics
    state_topic: str
    action_topic: str | None
    fps: int
    task: str
    queue_size: int = 10
    slop: float = 0.02
    timeout: float = 1.0
    bad_images: str = "error"  # or "skip": drop the message, count it in the report
    camera_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.cameras:
            raise BagError("--cameras needs at least one image topic")
        if self.bad_images not in ("error", "skip"):
            raise BagError(f"bad_images must be 'error' or 'skip', got {self.bad_images!r}")
        if not self.camera_names:
            self.camera_names = [camera_name(t) for t in self.cameras]
        if len(set(self.camera_names)) != len(self.camera_names):
            raise BagError(f"camera topics {self.cameras} give duplicate names {self.camera_names}; rename them")
        if not self.task:
            raise BagError("--task must not be empty")


def _open(bag: Path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    return AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))


def _connections(reader, bag: Path, opts: BagOptions) -> dict:
    by_topic = {c.topic: c for c in reader.connections}
    wanted = list(opts.cameras) + [opts.state_topic] + ([opts.action_topic] if opts.action_topic else [])
    for topic in wanted:
        if topic not in by_topic:
            raise BagError(f"bag {bag} has no topic {topic!r}; its topics are: {', '.join(sorted(by_topic))}")
    for topic in opts.cameras:
        if by_topic[topic].msgtype not in IMAGE_TYPES:
            raise BagError(f"bag {bag}: camera topic {topic} has type {by_topic[topic].msgtype}, not an image type")
    return {t: by_topic[t] for t in wanted}


def probe(bag: Path, opts: BagOptions) -> tuple[dict[str, tuple[int, int]], list[str], list[str]]:
    """Image sizes per camera and state/action names, from the first messages of a bag."""
    sizes: dict[str, tuple[int, int]] = {}
    names: dict[str, list[str]] = {}
    with _open(bag) as reader:
        conns = _connections(reader, bag, opts)
        topic_to_cam = dict(zip(opts.cameras, opts.camera_names))
        for conn, _, raw in reader.messages(connections=list(conns.values())):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic in topic_to_cam and topic_to_cam[conn.topic] not in sizes:
                try:
                    sizes[topic_to_cam[conn.topic]] = msg_to_rgb(msg, conn.topic).shape[:2]
                except ImageDecodeError:
                    if opts.bad_images == "error":
                        raise
            elif conn.topic in (opts.state_topic, opts.action_topic) and conn.topic not in names:
                value, n = vector_of(msg, conn.topic)
                names[conn.topic] = n or [f"{'state' if conn.topic == opts.state_topic else 'action'}_{i}" for i in range(value.size)]
            if len(sizes) == len(opts.cameras) and len(names) == len({opts.state_topic, opts.action_topic} - {None}):
                break
    for topic, cam in zip(opts.cameras, opts.camera_names):
        if cam not in sizes:
            raise BagError(f"bag {bag}: camera topic {topic} has no decodable image")
    if opts.state_topic not in names:
        raise BagError(f"bag {bag}: state topic {opts.state_topic} has no message")
    state_names = names[opts.state_topic]
    action_names = names[opts.action_topic] if opts.action_topic else list(state_names)
    if opts.action_topic and opts.action_topic not in names:
        raise BagError(f"bag {bag}: action topic {opts.action_topic} has no message")
    return {c: sizes[c] for c in opts.camera_names}, state_names, action_names


def convert_bag(bag: Path, opts: BagOptions, writer: RecordingWriter, report: RecordingReport) -> int:
    """Convert one bag into one committed episode; returns the number of frames."""
    asm = EpisodeAssembler(opts.camera_names, opts.fps, opts.queue_size, opts.slop, opts.timeout)
    state = SignalBuffer(f"state topic {opts.state_topic}")
    action = SignalBuffer(f"action topic {opts.action_topic}") if opts.action_topic else None
    topic_to_cam = dict(zip(opts.cameras, opts.camera_names))
    pending: deque = deque()  # grid frames waiting until the commands of their slot are read
    skipped: dict[str, int] = {}
    period = 1.0 / opts.fps
    frames_written = 0
    reader_time = float("-inf")
    frames_for_no_action: list = []  # without an action topic the action is the next frame's state

    def decode(cam: str, msg) -> np.ndarray:
        return msg_to_rgb(msg, dict(zip(opts.camera_names, opts.cameras))[cam])

    def emit(gf) -> None:
        nonlocal frames_written
        s = state.at(gf.grid_time)
        if s is None:
            s = state.first()
            asm.warnings["state not yet published at the first frame(s): first state used"] += 1
        if action is not None:
            a = action.command_for(gf.grid_time, period)
            if a is None:
                a = action.first()
                asm.warnings["no command sent yet at the first frame(s): first command used"] += 1
            writer.add_frame(asm.lerobot_frame(gf, decode, s, a, opts.task))
            frames_written += 1
        else:
            frames_for_no_action.append((gf, s))
            if len(frames_for_no_action) == 2:
                (g0, s0), (_, s1) = frames_for_no_action
                writer.add_frame(asm.lerobot_frame(g0, decode, s0, s1, opts.task))
                frames_written += 1
                frames_for_no_action.pop(0)

    def drain(final: bool) -> None:
        while pending and (final or reader_time > pending[0].grid_time + period + opts.slop):
            emit(pending.popleft())
        if pending:
            t = pending[0].grid_time
            state.drop_before(t - period)
            if action is not None:
                action.drop_before(t - period)

    with _open(bag) as reader:
        conns = _connections(reader, bag, opts)
        for conn, log_ns, raw in reader.messages(connections=list(conns.values())):
            msg = reader.deserialize(raw, conn.msgtype)
            t = _msg_time(msg, log_ns)
            reader_time = max(reader_time, t)  # header stamps and log time must share a clock
            if conn.topic in topic_to_cam:
                cam = topic_to_cam[conn.topic]
                if opts.bad_images == "skip":
                    try:
                        msg_to_rgb(msg, conn.topic)
                    except ImageDecodeError as exc:
                        skipped[cam] = skipped.get(cam, 0) + 1
                        asm.warnings[f"camera {cam}: bad image skipped: {exc}"] += 1
                        continue
                pending.extend(asm.add_image(cam, t, msg))
            else:
                value, _ = vector_of(msg, conn.topic)
                if conn.topic == opts.state_topic:
                    state.add(t, value)
                if action is not None and conn.topic == opts.action_topic:
                    action.add(t, value)
            drain(final=False)
        pending.extend(asm.flush())
        drain(final=True)
    if frames_for_no_action:  # last frame: no next state, hold the current one
        g0, s0 = frames_for_no_action.pop()
        writer.add_frame(asm.lerobot_frame(g0, decode, s0, s0, opts.task))
        frames_written += 1
    if frames_written == 0:
        raise BagError(
            f"bag {bag}: no synchronised frame (cameras never within slop={opts.slop} s of each other?); "
            f"messages per camera: {dict(asm.sync.stats.received)}"
        )
    warnings = asm.collect_warnings()
    if state.out_of_order:
        warnings[f"state topic: {state.out_of_order} message(s) out of time order"] += 1
    dropped = asm.dropped()
    for cam, n in skipped.items():
        dropped[cam] += n
    index = writer.episodes
    report.add_episode(index, frames_written, asm.resampler.held, dropped, asm.skews, source=str(bag), warnings=warnings)
    writer.save_episode(report=report)
    return frames_written


def bags_to_lerobot(bags: Sequence[str | Path], root: str | Path, opts: BagOptions, robot_type: str | None = None,
                    resume: bool = False, vcodec: str = DEFAULT_VCODEC, progress: bool = True,
                    streaming_encoding: bool = True) -> RecordingReport:
    """Convert bags (one episode each) into a LeRobot dataset at ``root``."""
    from tqdm import tqdm

    paths = find_bags(bags)
    sizes, state_names, action_names = probe(paths[0], opts)
    features = build_features(sizes, state_names, action_names)
    writer = RecordingWriter(root, opts.fps, features, robot_type=robot_type, resume=resume, vcodec=vcodec,
                             streaming_encoding=streaming_encoding)
    report = RecordingReport.load_or_new(root, opts.camera_names, source="bag2lerobot",
                                         committed_episodes=writer.episodes)
    try:
        for bag in tqdm(paths, desc="bags", unit="bag", disable=not progress):
            try:
                convert_bag(bag, opts, writer, report)
            except Exception:
                writer.discard_episode()
                raise
    finally:
        writer.close()
    return report
