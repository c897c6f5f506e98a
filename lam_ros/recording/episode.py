"""Streaming episode assembly shared by the bag, live and sim sources:
camera messages -> ``ApproximateTimeSync`` -> ``GridResampler`` -> LeRobot frames.

Images are kept undecoded until their grid frame is final, so memory stays
bounded by the sync queues whatever the episode length.
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import Any
from collections.abc import Callable

import numpy as np

from lam_ros.recording.sync import ApproximateTimeSync, GridFrame, GridResampler
from lam_ros.recording.writer import image_key


class SignalBuffer:
    """Time-stamped vectors (joint states, commands) looked up by time.

    ``at(t)`` holds the last value at or before ``t``; ``command_for(t, period)``
    gives the last command sent in ``(t, t + period]`` (the command that acted
    on this frame), else the one in effect at ``t``.
    """

    def __init__(self, name: str, dim: int | None = None):
        self.name = name
        self.dim = dim
        self.times: list[float] = []
        self.values: list[np.ndarray] = []
        self.out_of_order = 0

    def add(self, t: float, value) -> None:
        v = np.asarray(value, dtype=np.float32).reshape(-1)
        if self.dim is None:
            self.dim = v.size
        if v.size != self.dim:
            raise ValueError(f"{self.name}: message has {v.size} values, expected {self.dim}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{self.name}: message at t={t:.3f} s contains NaN/inf: {v.tolist()}")
        if self.times and t < self.times[-1]:
            self.out_of_order += 1
        i = bisect.bisect_right(self.times, t)
        self.times.insert(i, t)
        self.values.insert(i, v)

    def at(self, t: float) -> np.ndarray | None:
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else None

    def command_for(self, t: float, period: float) -> np.ndarray | None:
        i = bisect.bisect_right(self.times, t + period)
        if i and self.times[i - 1] > t:
            return self.values[i - 1]
        return self.at(t)

    def first(self) -> np.ndarray | None:
        return self.values[0] if self.values else None

    def drop_before(self, t: float) -> None:
        """Forget values older than the one in effect at ``t`` (bounded memory)."""
        i = bisect.bisect_right(self.times, t) - 1
        if i > 0:
            del self.times[:i]
            del self.values[:i]


class EpisodeAssembler:
    """One episode: feed camera messages; get final grid frames back."""

    def __init__(self, cameras: list[str], fps: float, queue_size: int = 10, slop: float = 0.02,
                 timeout: float = 1.0):
        self.cameras = list(cameras)
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self.sync = ApproximateTimeSync(self.cameras, queue_size=queue_size, slop=slop)
        self.last_arrival: dict[str, float] = {}
        self.resampler = GridResampler(self.fps, timeout=timeout, silent=self._silent)
        self.skews: list[float] = []
        self.frames = 0
        self.warnings: Counter = Counter()

    def _silent(self, start: float, end: float) -> list[str]:
        """Cameras that sent nothing newer than the last matched set (at ``start``)."""
        margin = max(self.sync.slop, self.period / 2)
        return [
            f"{c} (last stamp {self.sync.latest[c]:.3f} s)" if c in self.sync.latest else f"{c} (no message at all)"
            for c in self.cameras
            if self.sync.latest.get(c, float("-inf")) <= start + margin
        ]

    def add_image(self, camera: str, stamp: float, payload: Any) -> list[GridFrame]:
        matched = self.sync.add(camera, stamp, payload)
        return self.resampler.push(matched) if matched is not None else []

    def flush(self) -> list[GridFrame]:
        end = max(self.sync.latest.values(), default=None)
        return self.resampler.flush(end_time=end)

    def lerobot_frame(self, frame: GridFrame, decode: Callable[[str, Any], np.ndarray],
                      state: np.ndarray, action: np.ndarray, task: str) -> dict:
        """Decode the frame's images and build the dict for ``add_frame``."""
        out = {image_key(c): decode(c, frame.matched.items[c].data) for c in self.cameras}
        out["observation.state"] = np.asarray(state, np.float32)
        out["action"] = np.asarray(action, np.float32)
        out["sync.capture_time"] = np.array([frame.matched.items[c].stamp for c in self.cameras], np.float64)
        out["sync.skew"] = np.array([frame.matched.skew], np.float32)
        out["sync.held"] = np.array([1.0 if frame.held else 0.0], np.float32)
        out["task"] = task
        self.skews.append(frame.matched.skew)
        self.frames += 1
        return out

    def dropped(self) -> dict[str, int]:
        """Per camera: messages never used in a matched set (evicted, unmatched, left over)."""
        return {c: self.sync.stats.dropped(c) for c in self.cameras}

    def collect_warnings(self) -> Counter:
        w = Counter(self.warnings)
        st = self.sync.stats
        for c in self.cameras:
            if st.non_monotonic[c]:
                w[f"camera {c}: {st.non_monotonic[c]} stamp(s) went backwards (non-monotonic clock or reordering)"] += 1
            if st.duplicates[c]:
                w[f"camera {c}: {st.duplicates[c]} duplicate stamp(s), the later message kept"] += 1
            if st.invalid[c]:
                w[f"camera {c}: {st.invalid[c]} message(s) with NaN/inf stamps refused"] += 1
            if self.dropped()[c]:
                w[f"camera {c}: {self.dropped()[c]} frame(s) dropped (never matched within slop)"] += 1
        if self.resampler.stale:
            w[f"{self.resampler.stale} matched set(s) arrived too late for their grid slot and were ignored"] += 1
        if self.resampler.held:
            w[f"{self.resampler.held} grid slot(s) had no new synchronised set; previous frame repeated (sync.held=1)"] += 1
        return w
