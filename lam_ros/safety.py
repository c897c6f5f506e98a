"""The safety layer between a policy and a robot (ROS-free).

Every end-effector command on its way to a robot passes :class:`SafetyLayer`,
which applies these rules, in this order:

1. **NaN/range guard** - a target or robot state with a NaN/inf is blocked,
   never "repaired" (a NaN means the policy is broken).
2. **E-stop latch** - once :meth:`SafetyLayer.estop` was called nothing is sent
   until :meth:`SafetyLayer.reset_estop` is called explicitly.
3. **Watchdog** - every required input (each camera, the policy output, the
   robot state) must have been seen within ``stale_after_s`` (default 0.2 s)
   of *now*; a missing or stale input stops sending. The newest *arrival*
   counts (not the largest stamp), and an input stamped more than
   ``max_future_s`` ahead of now counts as stale too, so neither a frame
   stamped in the future nor a clock jumping back (a simulator reset) can
   silence the watchdog.
4. **Workspace box** - the target position is clamped into an axis-aligned
   box in the robot base frame.
5. **Per-step limits** - translation and rotation relative to the current
   end-effector pose are scaled down to ``max_step_translation_m`` /
   ``max_step_rotation_rad`` (direction kept).
6. **Final check** - the command that would leave is checked once more
   (finite, inside the box, within the step limits, gripper in [0, 1],
   angles in [-pi, pi)); if anything fails it is blocked.
7. **Dry-run gate** - on by default: the command is computed and logged but
   ``decision.send`` is False until motion is enabled.

Blocked and clamped commands are logged with the reason, throttled so a
stale camera at 5 Hz does not flood the log but a *change* of reason is
always logged immediately.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from collections.abc import Iterable

import numpy as np

from lam_ros.adapters.ee import (
    EECommand,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rpy,
    rotation_angle,
    rpy_to_matrix,
    wrap_angle,
)

log = logging.getLogger(__name__)

__all__ = [
    "SafetyConfig",
    "Watchdog",
    "EStopLatch",
    "WorkspaceBox",
    "StepLimiter",
    "SafetyDecision",
    "SafetyLayer",
]

# A little slack so float round-off of a clamped value never trips the final check.
_EPS = 1e-9


def _robot_box(robot: str, i: int) -> tuple[float, float, float]:
    from sim.robots import get_robot  # numpy only; the one source of each arm's workspace box

    return get_robot(robot).workspace[i]


@dataclass
class SafetyConfig:
    """Safety parameters. Defaults suit a WidowX 250 on a table at 5 Hz (its workspace box is
    ``sim.robots``'; :meth:`for_robot` takes another arm's)."""

    workspace_min: tuple[float, float, float] = field(default_factory=lambda: _robot_box("widowx", 0))
    workspace_max: tuple[float, float, float] = field(default_factory=lambda: _robot_box("widowx", 1))
    max_step_translation_m: float = 0.05
    max_step_rotation_rad: float = 0.35
    stale_after_s: float = 0.2
    max_future_s: float = 0.1  # inputs stamped further ahead of the clock are refused (clock skew allowance)
    dry_run: bool = True
    required_inputs: tuple[str, ...] = ()
    log_period_s: float = 2.0

    def __post_init__(self) -> None:
        lo = np.asarray(self.workspace_min, dtype=np.float64)
        hi = np.asarray(self.workspace_max, dtype=np.float64)
        if lo.shape != (3,) or hi.shape != (3,):
            raise ValueError(f"workspace_min/max must have 3 values each, got {self.workspace_min} / {self.workspace_max}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ValueError(f"workspace box needs finite min < max on every axis, got min={lo.tolist()} max={hi.tolist()}")
        for name in ("max_step_translation_m", "max_step_rotation_rad", "stale_after_s", "max_future_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")

    @classmethod
    def for_robot(cls, robot: str, workspace_min=None, workspace_max=None, **kwargs) -> SafetyConfig:
        """The config for ``robot`` (``widowx`` | ``piper``): its workspace box from ``sim.robots``
        unless ``workspace_min`` / ``workspace_max`` are given (None or empty = the robot's)."""
        return cls(workspace_min=tuple(workspace_min) if workspace_min else _robot_box(robot, 0),
                   workspace_max=tuple(workspace_max) if workspace_max else _robot_box(robot, 1), **kwargs)


class Watchdog:
    """Ages of named inputs; an input never seen counts as stale, and so does one whose
    stamp lies more than ``max_future_s`` ahead of now (its age would be negative)."""

    def __init__(self, limit_s: float, required: Iterable[str] = (), max_future_s: float = 0.1):
        if not (math.isfinite(limit_s) and limit_s > 0):
            raise ValueError(f"watchdog limit must be positive, got {limit_s!r}")
        self.limit_s = float(limit_s)
        self.max_future_s = float(max_future_s)
        self.required = list(dict.fromkeys(required))
        self._last: dict[str, float] = {}

    def require(self, name: str) -> None:
        if name not in self.required:
            self.required.append(name)

    def feed(self, name: str, stamp_s: float) -> None:
        """Record that ``name`` produced data stamped ``stamp_s``. The latest arrival wins, even
        with an earlier stamp: after a clock jump back, keeping the largest stamp would make the
        input look fresh (negative age) forever."""
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            return
        self._last[name] = stamp_s

    def clear(self) -> None:
        """Forget every input (a new episode): all count as never seen until fed again."""
        self._last.clear()

    def age(self, name: str, now_s: float) -> float | None:
        t = self._last.get(name)
        return None if t is None else float(now_s) - t

    def stale(self, now_s: float) -> dict[str, float | None]:
        """Required inputs older than the limit: name -> age (None = never seen)."""
        out: dict[str, float | None] = {}
        for name in self.required:
            a = self.age(name, now_s)
            if a is None or a > self.limit_s or a < -self.max_future_s:
                out[name] = a
        return out


class EStopLatch:
    """Latched emergency stop: stays engaged until :meth:`reset`."""

    def __init__(self, logger=None) -> None:
        self.log = logger or log
        self.engaged = False
        self.reason = ""

    def trigger(self, reason: str = "e-stop") -> None:
        if not self.engaged:
            self.log.error(f"E-STOP engaged ({reason}): no command will be sent until reset")
        self.engaged = True
        self.reason = reason

    def reset(self) -> None:
        if self.engaged:
            self.log.warning(f"E-stop reset (was: {self.reason}): commands may be sent again")
        self.engaged = False
        self.reason = ""


class WorkspaceBox:
    """Axis-aligned box in the base frame the end effector must stay in."""

    def __init__(self, lo, hi):
        self.lo = np.asarray(lo, dtype=np.float64).reshape(3)
        self.hi = np.asarray(hi, dtype=np.float64).reshape(3)

    def contains(self, position) -> bool:
        p = np.asarray(position, dtype=np.float64)
        return bool(np.all(p >= self.lo - _EPS) and np.all(p <= self.hi + _EPS))

    def clamp(self, position) -> tuple[np.ndarray, str | None]:
        p = np.asarray(position, dtype=np.float64)
        c = np.clip(p, self.lo, self.hi)
        if np.array_equal(c, p):
            return c, None
        axes = ", ".join(f"{ax} {p[i]:+.3f}->{c[i]:+.3f}" for i, ax in enumerate("xyz") if c[i] != p[i])
        return c, f"workspace clamp ({axes} m)"


class StepLimiter:
    """Limits how far one command may move from the current pose."""

    def __init__(self, max_translation_m: float, max_rotation_rad: float):
        self.max_translation_m = float(max_translation_m)
        self.max_rotation_rad = float(max_rotation_rad)

    def limit(self, reference6, target: EECommand) -> tuple[EECommand, list[str]]:
        ref = np.asarray(reference6, dtype=np.float64).reshape(6)
        out = target.copy()
        notes = []
        d = out.position - ref[:3]
        dist = float(np.linalg.norm(d))
        if dist > self.max_translation_m:
            out.position = ref[:3] + d * (self.max_translation_m / dist)
            notes.append(f"step translation {dist * 1000:.1f} mm > {self.max_translation_m * 1000:.1f} mm, scaled down")
        R_ref = rpy_to_matrix(ref[3:])
        rotvec = matrix_to_axis_angle(rpy_to_matrix(out.rpy) @ R_ref.T)
        angle = float(np.linalg.norm(rotvec))
        if angle > self.max_rotation_rad:
            rotvec = rotvec * (self.max_rotation_rad / angle)
            out.rpy = matrix_to_rpy(axis_angle_to_matrix(rotvec) @ R_ref)
            notes.append(f"step rotation {math.degrees(angle):.1f} deg > {math.degrees(self.max_rotation_rad):.1f} deg, scaled down")
        return out, notes


@dataclass
class SafetyDecision:
    """What the safety layer decided for one command.

    ``command`` is the checked, clamped command (None when blocked before a
    command could be formed); ``send`` is True only when it may go to the robot.
    """

    command: EECommand | None
    send: bool
    blocked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.blocked) if self.blocked else "ok"


class _Throttle:
    """Log a message when its key changes, otherwise at most every ``period_s``."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self._last_key: str | None = None
        self._last_t = -math.inf

    def should_log(self, key: str, now_s: float) -> bool:
        if key != self._last_key or now_s - self._last_t >= self.period_s:
            self._last_key, self._last_t = key, now_s
            return True
        return False


class SafetyLayer:
    """Applies the rules in the module docstring to each command."""

    def __init__(self, config: SafetyConfig | None = None, logger=None):
        """``logger``: anything with info/warning/error(str) - a ``logging.Logger``
        or an rclpy node logger (which takes no %-style arguments, hence f-strings)."""
        self.config = config or SafetyConfig()
        self.log = logger or log
        self.watchdog = Watchdog(self.config.stale_after_s, self.config.required_inputs, self.config.max_future_s)
        self.estop_latch = EStopLatch(self.log)
        self.box = WorkspaceBox(self.config.workspace_min, self.config.workspace_max)
        self.limiter = StepLimiter(self.config.max_step_translation_m, self.config.max_step_rotation_rad)
        self.dry_run = bool(self.config.dry_run)
        self._block_throttle = _Throttle(self.config.log_period_s)
        self._clamp_throttle = _Throttle(self.config.log_period_s)
        # its own: check() lets each revoked command through first, which re-arms the block throttle
        self._revoke_throttle = _Throttle(self.config.log_period_s)
        self._future_seen: dict[str, int] = {}
        self.counts = {"sent": 0, "dry_run": 0, "blocked": 0, "clamped": 0, "future_stamped": 0}
        if self.dry_run:
            self.log.info("safety: DRY RUN - commands are computed and logged, not sent (set dry_run false to move)")

    # -- inputs -------------------------------------------------------------
    def feed(self, name: str, stamp_s: float) -> None:
        """Tell the watchdog an input (camera, 'policy', 'state') arrived."""
        self.watchdog.feed(name, stamp_s)

    def note_future(self, name: str, ahead_s: float) -> None:
        """An input stamped ``ahead_s`` in the future was refused (counted, warned about, throttled)."""
        self.counts["future_stamped"] += 1
        n = self._future_seen[name] = self._future_seen.get(name, 0) + 1
        if n == 1 or n % 100 == 0:  # the first of each input, then every 100th
            self.log.warning(
                f"safety: ignored {name} stamped {ahead_s * 1000:.0f} ms in the future "
                f"(limit {self.config.max_future_s * 1000:.0f} ms): check the clocks of the publisher and this machine"
            )

    def estop(self, reason: str = "e-stop topic") -> None:
        self.estop_latch.trigger(reason)

    def reset_estop(self) -> None:
        self.estop_latch.reset()

    def set_dry_run(self, dry_run: bool) -> None:
        if bool(dry_run) != self.dry_run:
            self.log.warning(f"safety: dry_run {self.dry_run} -> {bool(dry_run)}")
        self.dry_run = bool(dry_run)

    # -- the check ------------------------------------------------------------
    def check(self, target: EECommand, current_pose6, now_s: float) -> SafetyDecision:
        """Decide whether (a clamped version of) ``target`` may be sent now.

        ``current_pose6`` is the measured end-effector pose (xyz + rpy) the
        step limits are relative to.
        """
        blocked = []
        current = None if current_pose6 is None else np.asarray(current_pose6, dtype=np.float64).reshape(-1)
        if target is None or not target.is_finite():
            blocked.append(f"non-finite target {None if target is None else target.pose6.round(4).tolist() + [target.gripper]}")
        if current is None or current.shape != (6,) or not np.all(np.isfinite(current)):
            blocked.append(f"no valid robot state ({None if current is None else current.round(4).tolist()})")
        if self.estop_latch.engaged:
            blocked.append(f"e-stop latched ({self.estop_latch.reason}); call reset")
        stale = self.watchdog.stale(now_s)
        if stale:
            parts = [f"{k} {'never seen' if a is None else f'{a * 1000:.0f} ms old' if a >= 0 else f'stamped {-a * 1000:.0f} ms in the future'}"
                     for k, a in stale.items()]
            blocked.append(f"stale inputs (limit {self.watchdog.limit_s * 1000:.0f} ms): {', '.join(parts)}")
        if blocked:
            return self._block(None, blocked, [], now_s)

        cmd = target.copy()
        notes: list[str] = []
        cmd.position, note = self.box.clamp(cmd.position)
        if note:
            notes.append(note)
        cmd, step_notes = self.limiter.limit(current, cmd)
        notes += step_notes
        g = min(1.0, max(0.0, cmd.gripper))
        if g != cmd.gripper:
            notes.append(f"gripper {cmd.gripper:.3f} clipped to {g:.3f}")
            cmd.gripper = g
        cmd.rpy = wrap_angle(cmd.rpy)
        cmd.notes = notes

        final = self._final_check(cmd, current)
        if final:
            return self._block(cmd, final, notes, now_s)
        if notes:
            self.counts["clamped"] += 1
            if self._clamp_throttle.should_log("|".join(n.split(" ")[0] for n in notes), now_s):
                self.log.warning("safety: command clamped: " + "; ".join(notes))
        if self.dry_run:
            self.counts["dry_run"] += 1
            if self._block_throttle.should_log("dry_run", now_s):
                self.log.info(
                    f"safety: DRY RUN, not sent: xyz={np.round(cmd.position, 4).tolist()} "
                    f"rpy={np.round(cmd.rpy, 3).tolist()} gripper={cmd.gripper:.2f}"
                )
            return SafetyDecision(cmd, False, ["dry_run"], notes)
        self.counts["sent"] += 1
        self._block_throttle._last_key = None  # the next block is logged at once
        return SafetyDecision(cmd, True, [], notes)

    def _final_check(self, cmd: EECommand, current: np.ndarray) -> list[str]:
        bad = []
        if not cmd.is_finite():
            bad.append("non-finite after clamping")
        if not self.box.contains(cmd.position):
            bad.append(
                f"target {np.round(cmd.position, 3).tolist()} outside workspace box even after clamping "
                f"(robot at {np.round(current[:3], 3).tolist()} is outside the box: move it in by hand)"
            )
        if np.linalg.norm(cmd.position - current[:3]) > self.limiter.max_translation_m + 1e-6:
            bad.append("translation step still above limit")
        if rotation_angle(current[3:], cmd.rpy) > self.limiter.max_rotation_rad + 1e-6:
            bad.append("rotation step still above limit")
        if not (0.0 <= cmd.gripper <= 1.0):
            bad.append(f"gripper {cmd.gripper} outside [0, 1]")
        if np.any(np.abs(cmd.rpy) > math.pi + _EPS):
            bad.append("angle outside [-pi, pi]")
        return bad

    def revoke(self, decision: SafetyDecision, reason: str, now_s: float) -> SafetyDecision:
        """Withdraw a command :meth:`check` let through that a later stage could not send (the arm's IK found no
        joints for it): it counts as blocked, not sent, so the diagnostics count only commands that left. A repeated
        reason is logged once per ``log_period_s``, as blocks are."""
        if decision.send:
            decision.send = False
            self.counts["sent"] -= 1
            self.counts["blocked"] += 1
        decision.blocked.append(reason)
        if self._revoke_throttle.should_log(reason.split(":")[0], now_s):
            self.log.warning(f"safety: command NOT sent, {reason}")
        return decision

    def _block(self, cmd, blocked, notes, now_s) -> SafetyDecision:
        self.counts["blocked"] += 1
        reason = "; ".join(blocked)
        if self._block_throttle.should_log(reason.split(":")[0], now_s):
            self.log.warning(f"safety: command BLOCKED, nothing sent: {reason}")
        return SafetyDecision(cmd, False, blocked, notes)
