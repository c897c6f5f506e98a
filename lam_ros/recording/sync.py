"""Synchronisation core: approximate-time matching of N camera streams, then
resampling the matched sets onto the fixed frame grid LeRobot expects.

``ApproximateTimeSync`` reproduces the semantics of ROS 2
``message_filters.ApproximateTimeSynchronizer`` (per-topic queues keyed by
header stamp and trimmed to ``queue_size``; a set fires when one message of
every topic lies within ``slop``; matched messages leave the queues). It is
written here because message_filters ships only with a ROS install, and the bag
converter and the simulator recorder must run without one.

``GridResampler`` turns matched sets (irregular times) into one snapshot per
grid time ``t0 + k / fps``: the set nearest to the grid time within half a
period wins; a grid slot with no set repeats the previous snapshot and is
counted; a gap longer than ``timeout`` raises ``CameraTimeoutError`` naming the
cameras that went silent.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Sequence


class SyncError(ValueError):
    """Bad synchronisation input (raised as ValueError so the CLI prints one line)."""


class CameraTimeoutError(SyncError):
    """A camera delivered nothing for longer than the configured timeout."""


@dataclass(frozen=True)
class Stamped:
    """One message of one stream: capture time (header stamp, seconds), its
    payload and, when known, its arrival time (e.g. the bag's log time)."""

    stamp: float
    data: Any = None
    arrival: float | None = None


@dataclass
class MatchedSet:
    """One message per camera whose stamps lie within ``slop`` of each other."""

    items: dict[str, Stamped]

    @property
    def stamps(self) -> dict[str, float]:
        return {name: item.stamp for name, item in self.items.items()}

    @property
    def time(self) -> float:
        """Representative time of the set: the mean of its stamps."""
        values = list(self.stamps.values())
        return sum(values) / len(values)

    @property
    def skew(self) -> float:
        """Largest stamp difference inside the set (seconds)."""
        values = list(self.stamps.values())
        return max(values) - min(values)


@dataclass
class SyncStats:
    """Counters the recording report shows."""

    received: Counter = field(default_factory=Counter)
    matched: Counter = field(default_factory=Counter)
    evicted: Counter = field(default_factory=Counter)  # pushed out of a full queue, never matched
    duplicates: Counter = field(default_factory=Counter)  # same stamp twice: the newer one replaces it
    non_monotonic: Counter = field(default_factory=Counter)  # stamp older than the newest seen
    invalid: Counter = field(default_factory=Counter)  # NaN / inf stamps, refused

    def dropped(self, name: str) -> int:
        """Messages of one camera that never made it into a matched set."""
        return self.received[name] - self.matched[name]


class ApproximateTimeSync:
    """Approximate-time matching across ``names`` (message_filters semantics).

    ``add(name, stamp, data)`` returns the ``MatchedSet`` it completed, or None.
    Not thread-safe by itself: the live recorder calls it under its own lock,
    as message_filters runs its callback under the synchronizer's lock.
    """

    def __init__(self, names: Sequence[str], queue_size: int = 10, slop: float = 0.02):
        if len(names) == 0:
            raise SyncError("ApproximateTimeSync needs at least one stream name")
        if len(set(names)) != len(names):
            raise SyncError(f"duplicate stream names: {list(names)}")
        if queue_size < 1:
            raise SyncError(f"queue_size must be >= 1, got {queue_size}")
        if not slop > 0:
            raise SyncError(f"slop must be > 0 seconds, got {slop}")
        self.names = list(names)
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self.queues: dict[str, dict[float, Stamped]] = {n: {} for n in self.names}
        self.latest: dict[str, float] = {}
        self._recent: dict[str, deque] = {n: deque(maxlen=4 * self.queue_size) for n in self.names}
        self.stats = SyncStats()

    def add(self, name: str, stamp: float, data: Any = None) -> MatchedSet | None:
        if name not in self.queues:
            raise SyncError(f"unknown stream {name!r}; expected one of {self.names}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            self.stats.invalid[name] += 1
            return None
        queue = self.queues[name]
        if stamp in self._recent[name]:
            # Same stamp twice. Still queued: the newer message replaces it (as
            # message_filters' dict does). Already matched: ignored, so one
            # capture never yields two frames.
            self.stats.duplicates[name] += 1
            if stamp in queue:
                queue[stamp] = Stamped(stamp, data)
            return None
        self._recent[name].append(stamp)
        self.stats.received[name] += 1
        if name in self.latest and stamp < self.latest[name]:
            self.stats.non_monotonic[name] += 1
        self.latest[name] = max(stamp, self.latest.get(name, stamp))
        queue[stamp] = Stamped(stamp, data)
        while len(queue) > self.queue_size:
            del queue[min(queue)]
            self.stats.evicted[name] += 1

        # Candidates from every other queue within slop of the new stamp, nearest first.
        candidates: list[list[float]] = []
        for other in self.names:
            if other == name:
                continue
            near = sorted((abs(s - stamp), s) for s in self.queues[other] if abs(s - stamp) <= self.slop)
            if not near:
                return None
            candidates.append([s for _, s in near])
        others = [n for n in self.names if n != name]
        for combo in itertools.product(*candidates):
            chosen = dict(zip(others, combo))
            chosen[name] = stamp
            values = list(chosen.values())
            if max(values) - min(values) < self.slop or len(values) == 1:
                matched = MatchedSet({n: self.queues[n].pop(chosen[n]) for n in self.names})
                for n in self.names:
                    self.stats.matched[n] += 1
                return matched
        return None


@dataclass
class GridFrame:
    """One dataset frame: the snapshot for grid time ``index / fps`` after ``t0``."""

    index: int
    grid_time: float
    matched: MatchedSet
    held: bool  # True when no set fell in this slot and the previous one was repeated

    @property
    def offsets(self) -> dict[str, float]:
        """Capture time minus grid time per camera (seconds)."""
        return {n: s - self.grid_time for n, s in self.matched.stamps.items()}


class GridResampler:
    """Streaming resampler of matched sets onto ``t0 + k / fps``.

    Feed sets in arrival order with ``push``; it returns the grid frames that
    became final. ``flush`` finalises the last slot. Sets older than the slot
    being filled (late or out of order) are counted in ``stale`` and ignored.
    """

    def __init__(
        self,
        fps: float,
        timeout: float = 1.0,
        silent: Callable[[float, float], list[str]] | None = None,
        t0: float | None = None,
    ):
        if not fps > 0:
            raise SyncError(f"fps must be > 0, got {fps}")
        if not timeout > 0:
            raise SyncError(f"timeout must be > 0 seconds, got {timeout}")
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self.timeout = float(timeout)
        self.t0 = t0
        self.k = 0
        self.best: MatchedSet | None = None
        self.previous: MatchedSet | None = None
        self.last_real_time: float | None = None  # time of the last set put on the grid
        self.last_set_time: float | None = None  # time of the newest set accepted (maybe not final yet)
        self.silent = silent
        self.stale = 0
        self.held = 0
        self.skipped = 0  # sets that lost their slot to a nearer one (downsampling)

    def grid_time(self, k: int) -> float:
        return self.t0 + k * self.period

    def push(self, matched: MatchedSet) -> list[GridFrame]:
        t = matched.time
        if self.t0 is None:
            self.t0 = t
        out: list[GridFrame] = []
        half = self.period / 2
        if t < self.grid_time(self.k) - half:
            self.stale += 1
            return out
        while t >= self.grid_time(self.k) + half:
            out.extend(self._finalise(upcoming=t))
        self.last_set_time = t if self.last_set_time is None else max(self.last_set_time, t)
        if self.best is None or abs(t - self.grid_time(self.k)) < abs(self.best.time - self.grid_time(self.k)):
            if self.best is not None:
                self.skipped += 1
            self.best = matched
        else:
            self.skipped += 1
        return out

    def flush(self, end_time: float | None = None) -> list[GridFrame]:
        """Finalise the last slot. ``end_time`` (the newest stamp any camera
        sent) exposes a camera that stalled until the end of the episode."""
        out = self._finalise(upcoming=None) if self.best is not None else []
        if end_time is not None and self.last_real_time is not None and end_time - self.last_real_time > self.timeout:
            raise CameraTimeoutError(self._timeout_message(end_time))
        return out

    def _finalise(self, upcoming: float | None) -> list[GridFrame]:
        gt = self.grid_time(self.k)
        if self.best is not None:
            frame = GridFrame(self.k, gt, self.best, held=False)
            self.previous = self.best
            self.last_real_time = self.best.time
            self.best = None
        else:
            if self.previous is None:  # cannot happen: t0 comes from a real set
                raise SyncError("grid slot without any previous frame")
            if upcoming is not None and upcoming - self.last_real_time > self.timeout:
                raise CameraTimeoutError(self._timeout_message(upcoming))
            frame = GridFrame(self.k, gt, self.previous, held=True)
            self.held += 1
        self.k += 1
        return [frame]

    def _timeout_message(self, upcoming: float) -> str:
        gap = upcoming - self.last_real_time
        silent = ""
        if self.silent is not None:
            names = self.silent(self.last_real_time, upcoming)
            if names:
                silent = " silent camera(s): " + ", ".join(names) + ";"
        return (
            f"no synchronised frame set for {gap:.3f} s (from {self.last_real_time:.3f} s to {upcoming:.3f} s), "
            f"longer than the camera timeout of {self.timeout:.3f} s;{silent} check the camera streams or raise --timeout"
        )


def synchronise(
    streams: dict[str, Sequence[Stamped]],
    fps: float,
    queue_size: int = 10,
    slop: float = 0.02,
    timeout: float = 1.0,
) -> tuple[list[GridFrame], ApproximateTimeSync, GridResampler]:
    """Offline helper: feed the streams in arrival order, match, resample.

    Arrival order is ``Stamped.arrival`` where given (a bag's log time), else
    the stamp. Matched sets are sorted by time before resampling: offline we
    can afford to wait for every late message.
    """
    sync = ApproximateTimeSync(list(streams), queue_size=queue_size, slop=slop)
    arrivals = sorted(
        ((msg.arrival if msg.arrival is not None else msg.stamp, order, name, msg)
         for name, msgs in streams.items() for order, msg in enumerate(msgs)),
        key=lambda x: (x[0], x[1]),
    )
    sets = [m for _, _, name, msg in arrivals if (m := sync.add(name, msg.stamp, msg.data)) is not None]
    sets.sort(key=lambda m: m.time)

    def silent(start: float, end: float) -> list[str]:
        margin = min(0.5 / fps, (end - start) / 4)
        return [
            name for name, msgs in streams.items()
            if not any(start + margin < m.stamp < end - margin for m in msgs)
        ]

    resampler = GridResampler(fps, timeout=timeout, silent=silent)
    frames: list[GridFrame] = []
    for m in sets:
        frames.extend(resampler.push(m))
    end = max((m.stamp for msgs in streams.values() for m in msgs), default=None)
    frames.extend(resampler.flush(end_time=end))
    return frames, sync, resampler
