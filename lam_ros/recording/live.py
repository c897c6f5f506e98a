"""The ROS-free core of the live recorder node (``lam_ros/nodes/recorder_node.py``).

Callbacks (any thread) hand in decoded images, joint states and the commands
actually sent; matched, resampled frames go through a queue to one writer
thread that owns the ``RecordingWriter`` (lerobot datasets are not
thread-safe, and encoding must not block the ROS callbacks). ``start`` /
``stop`` (save) / ``discard`` control episodes. A camera silent for longer
than ``timeout`` ends the episode early: the frames before the gap are saved
and the report says why.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque

import numpy as np

from lam_ros.recording.episode import EpisodeAssembler, SignalBuffer
from lam_ros.recording.report import RecordingReport
from lam_ros.recording.sync import CameraTimeoutError
from lam_ros.recording.writer import DEFAULT_VCODEC, RecordingError, RecordingWriter, build_features

log = logging.getLogger(__name__)


EE_NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]


class LiveRecorder:
    """Live episodes into a crash-safe LeRobot dataset at ``root``.

    The node calls ``add_image`` / ``add_state`` / ``add_action`` from its
    callbacks and ``start_episode`` / ``stop_episode`` / ``discard_episode``
    from its services. The dataset is created (or, with ``resume``, reopened
    after recovery) when the first frame is written, so image sizes come from
    the cameras themselves. State and action sizes come from ``state_names`` /
    ``action_names`` (default: the 7-D end-effector pose + gripper).
    """

    def __init__(self, root, cameras: list[str], fps: float, task: str = "", repo_id: str | None = None,
                 robot_type: str | None = None, state_names: list[str] | None = None,
                 action_names: list[str] | None = None, queue_size: int = 10, slop: float = 0.02,
                 timeout: float = 1.0, resume: bool = False, vcodec: str = DEFAULT_VCODEC,
                 streaming_encoding: bool = True):
        if float(fps) != int(fps) or int(fps) <= 0:
            raise RecordingError(f"fps must be a positive whole number (LeRobot stores an int), got {fps}")
        if not cameras:
            raise RecordingError("at least one camera is required")
        self.root, self.cameras, self.fps, self.task = root, list(cameras), int(fps), task
        self.repo_id = repo_id
        self.state_names = list(state_names or EE_NAMES)
        self.action_names = list(action_names or EE_NAMES)
        self.robot_type, self.resume, self.vcodec = robot_type, resume, vcodec
        self.streaming_encoding = streaming_encoding
        self.sync_args = dict(queue_size=queue_size, slop=slop, timeout=timeout)
        self.period = 1.0 / self.fps
        self.lock = threading.Lock()
        self.sizes: dict[str, tuple[int, int]] = {}
        self.state = SignalBuffer("state", len(self.state_names))
        self.action = SignalBuffer("action", len(self.action_names))
        self.asm: EpisodeAssembler | None = None
        self.pending: deque = deque()
        self.clock = float("-inf")
        self.writer: RecordingWriter | None = None
        self.report: RecordingReport | None = None
        self.work: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.max_backlog = 0
        self.last_error: str | None = None
        self.episode_warnings: Counter = Counter()
        self._ready = threading.Event()
        self._ensure_thread()  # imports lerobot now, not when the first frame of the first episode arrives

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the writer thread has imported lerobot (it takes seconds on a small machine)."""
        return self._ready.wait(timeout)

    # -- callbacks ---------------------------------------------------------
    def add_image(self, camera: str, stamp: float, rgb: np.ndarray) -> None:
        """A decoded (H, W, 3) uint8 RGB image with its header stamp (seconds)."""
        with self.lock:
            if camera not in self.cameras:
                raise RecordingError(f"unknown camera {camera!r}; expected one of {self.cameras}")
            size = tuple(rgb.shape[:2])
            if self.sizes.setdefault(camera, size) != size:
                raise RecordingError(f"camera {camera}: image size changed from {self.sizes[camera]} to {size}")
            self.clock = max(self.clock, stamp)
            if self.asm is None:
                return
            try:
                self.pending.extend(self.asm.add_image(camera, stamp, rgb))
            except CameraTimeoutError as exc:
                self._end_early(str(exc))
                return
            self._drain(final=False)

    def add_state(self, stamp: float, values) -> None:
        with self.lock:
            self.state.add(stamp, values)
            self.state.drop_before(self.clock - 5.0)
            self._advance(stamp)

    def add_action(self, stamp: float, values) -> None:
        """The command actually sent to the robot (after clamping)."""
        with self.lock:
            self.action.add(stamp, values)
            self.action.drop_before(self.clock - 5.0)
            self._advance(stamp)

    def _advance(self, stamp: float) -> None:
        """State/command messages keep the clock going when every camera stalls."""
        self.clock = max(self.clock, stamp)
        self._check_timeout()
        if self.asm is not None:
            self._drain(final=False)

    def check_timeout(self) -> None:
        """Ends the episode if no camera set arrived for ``timeout`` (also checked on every message)."""
        with self.lock:
            self._check_timeout()

    def _check_timeout(self) -> None:
        if self.asm is None or self.asm.resampler.last_set_time is None:
            return
        if self.clock - self.asm.resampler.last_set_time > self.sync_args["timeout"]:
            silent = self.asm._silent(self.asm.resampler.last_set_time, self.clock)
            self._end_early(f"no synchronised frame set for more than {self.sync_args['timeout']} s; "
                            f"silent camera(s): {', '.join(silent) or 'unknown'}")

    # -- control -----------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.asm is not None

    # Short names for scripts and tests.
    def start(self, task: str | None = None) -> None:
        self.start_episode(task)

    def stop(self) -> int | None:
        return self.stop_episode()

    def discard(self) -> None:
        self.discard_episode()

    on_image = add_image

    def start_episode(self, task: str | None = None) -> None:
        with self.lock:
            if self.asm is not None:
                raise RecordingError("already recording an episode; stop or discard it first")
            if task:
                self.task = task
            if not self.task:
                raise RecordingError("no task string: pass one to start_episode (or the node's task parameter)")
            self._ensure_thread()
            self.asm = EpisodeAssembler(self.cameras, self.fps, **self.sync_args)
            self.pending.clear()
            self.episode_warnings = Counter()

    def stop_episode(self) -> int | None:
        """Finish the episode: write the remaining frames, commit; returns the episode index (None if empty).

        An episode that got no frame raises, naming the cameras that sent nothing
        (typically a QoS mismatch: cameras publish BEST_EFFORT)."""
        with self.lock:
            if self.asm is None:
                raise RecordingError("not recording: nothing to stop")
            try:
                self.pending.extend(self.asm.flush())
            except CameraTimeoutError as exc:
                self.episode_warnings[f"episode ended by a camera timeout: {exc}"] += 1
            self._drain(final=True)
            asm, self.asm = self.asm, None
        return self._call("save", (asm, Counter(self.episode_warnings)))

    def discard_episode(self) -> None:
        with self.lock:
            if self.asm is None:
                raise RecordingError("not recording: nothing to discard")
            self.asm = None
            self.pending.clear()
        self._call("discard", None)

    def close(self) -> None:
        if self.recording:
            self.discard_episode()
        if self.thread is not None:
            self.work.put(("quit", None, None))
            self.thread.join()
            self.thread = None

    def status(self) -> dict:
        with self.lock:
            return {
                "recording": self.recording,
                "episodes": self.writer.episodes if self.writer else None,
                "frames": self.asm.frames if self.asm else 0,
                "backlog": self.work.qsize(),
                "max_backlog": self.max_backlog,
                "last_error": self.last_error,
            }

    # -- internals ---------------------------------------------------------
    def _end_early(self, reason: str) -> None:
        """Called with the lock held: save what came before the gap, then stop."""
        log.error("ending the episode early: %s", reason)
        self.last_error = reason
        self.episode_warnings[f"episode ended early: {reason}"] += 1
        self.pending.extend(self.asm.resampler.flush())  # the last set before the gap
        self._drain(final=True)
        asm, self.asm = self.asm, None
        self.work.put(("save", (asm, Counter(self.episode_warnings)), None))

    def _drain(self, final: bool) -> None:
        while self.pending and (final or self.clock > self.pending[0].grid_time + self.period + self.asm.sync.slop):
            gf = self.pending.popleft()
            s = self.state.at(gf.grid_time)
            a = self.action.command_for(gf.grid_time, self.period)
            if s is None or a is None:
                self.episode_warnings["frame skipped: no joint state / command received yet"] += 1
                continue
            frame = self.asm.lerobot_frame(gf, lambda cam, rgb: rgb, s, a, self.task)
            self.work.put(("frame", frame, None))
            self.max_backlog = max(self.max_backlog, self.work.qsize())

    def _ensure_writer(self) -> None:
        """In the worker thread, at the first frame: image sizes are known now."""
        if self.writer is not None:
            return
        features = build_features({c: self.sizes[c] for c in self.cameras}, self.state_names, self.action_names)
        self.writer = RecordingWriter(self.root, self.fps, features, robot_type=self.robot_type, repo_id=self.repo_id,
                                      resume=self.resume, vcodec=self.vcodec, streaming_encoding=self.streaming_encoding)
        self.report = RecordingReport.load_or_new(self.root, self.cameras, "live", self.writer.episodes)

    def _ensure_thread(self) -> None:
        if self.thread is not None:
            return
        self.thread = threading.Thread(target=self._worker, name="lerobot-writer", daemon=True)
        self.thread.start()

    def _call(self, op: str, payload):
        done: queue.Queue = queue.Queue()
        self.work.put((op, payload, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _worker(self) -> None:
        import lerobot.datasets.lerobot_dataset  # noqa: F401  (slow import, done before any frame arrives)

        self._ready.set()
        frames = 0
        while True:
            op, payload, done = self.work.get()
            try:
                if op == "quit":
                    if self.writer is not None:
                        self.writer.close()
                    return
                if op == "frame":
                    self._ensure_writer()
                    self.writer.add_frame(payload)
                    frames += 1
                    result = None
                elif op == "discard":
                    if self.writer is not None:
                        self.writer.discard_episode()
                    frames, result = 0, None
                elif op == "save":
                    result = self._save(payload, frames)
                    frames = 0
                if done is not None:
                    done.put((True, result))
            except Exception as exc:  # report to the caller; the node logs it
                log.exception("writer thread: %s failed", op)
                self.last_error = f"{op}: {exc}"
                if op == "frame":
                    self.episode_warnings[f"frame not written: {exc}"] += 1
                if done is not None:
                    done.put((False, exc))

    def _save(self, payload, frames: int) -> int | None:
        asm, extra = payload
        if frames == 0:
            if self.writer is not None:
                self.writer.discard_episode()
            silent = [c for c in self.cameras if asm.sync.stats.received[c] == 0]
            raise RecordingError(
                "the episode has no frame: " + (f"no image from camera(s) {silent} (check topics and QoS: cameras "
                                                 f"publish BEST_EFFORT)" if silent else
                                                 "no synchronised set, or no joint state / command received")
            )
        warnings = asm.collect_warnings() + extra
        index = self.writer.episodes
        self.report.add_episode(index, frames, asm.resampler.held, asm.dropped(), asm.skews, "live", warnings)
        return self.writer.save_episode(report=self.report)
