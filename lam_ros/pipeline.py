"""The ROS-free logic the nodes and ``lam-ros run --sim`` share.

* :class:`PolicyController` - latest camera frames + robot state -> policy
  (chunking and temporal ensembling are inside :class:`lam_ros.policy.Policy`)
  -> Bridge delta action -> absolute target -> :class:`~lam_ros.safety.SafetyLayer`
  -> robot adapter. The policy node calls it from a timer; the in-process
  pipeline calls it once per simulator step.
* :class:`LatentActionStream` - N camera streams -> approximate-time sync
  (:class:`lam_ros.recording.sync.ApproximateTimeSync`) -> pairs of
  synchronised frame sets ``frame_gap_s`` apart -> latent action codes and
  embeddings (any object with ``infer(frames_t, frames_tk)``).

Clocks are passed in as callables returning seconds, so the same code runs on
the ROS clock, the simulator clock or ``time.monotonic``.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import numpy as np

from lam_ros.action_convention import BRIDGE_DELTA, ActionApplier
from lam_ros.adapters.ee import EECommand
from lam_ros.adapters.widowx import UnreachableCommand
from lam_ros.safety import SafetyDecision, SafetyLayer

log = logging.getLogger(__name__)

Decoder = Callable[[Any], np.ndarray]


def _identity(x):
    return x


@dataclass
class TickResult:
    """What one control step did (for logs, diagnostics and tests)."""

    decision: SafetyDecision
    action: np.ndarray | None = None  # raw policy action (7,)
    target: EECommand | None = None  # before safety
    publications: list = field(default_factory=list)  # (topic, msg) from the adapter when sent
    image_stamps: dict = field(default_factory=dict)
    inference_s: float = 0.0

    @property
    def sent(self) -> bool:
        return self.decision.send


class PolicyController:
    """One control step = newest frames -> action -> safe target -> adapter.

    ``decode`` turns whatever :meth:`on_image` stored (a ROS message, an array)
    into uint8 RGB; decoding happens only at the control rate, not per frame.
    """

    def __init__(self, policy, safety: SafetyLayer, cameras, instruction: str = "", adapter=None,
                 decode: Decoder = _identity, clock: Callable[[], float] = time.monotonic, logger=None):
        self.policy = policy
        self.safety = safety
        self.cameras = list(cameras)
        if not self.cameras:
            raise ValueError("PolicyController needs at least one camera")
        self.instruction = instruction
        self.adapter = adapter
        self.decode = decode
        self.clock = clock
        self.log = logger or log
        self._frames: dict[str, tuple[float, Any]] = {}
        self.pose6: np.ndarray | None = None
        self.joints: np.ndarray | None = None
        self.gripper: float | None = None  # measured opening 1 open .. 0 closed, when the robot reports it
        # The policy's actions are applied exactly as its training data defined them.
        self.applier = ActionApplier(getattr(policy, "action_convention", BRIDGE_DELTA))
        self._last_gripper = 1.0  # last commanded gripper: the state's gripper when none is measured
        for cam in self.cameras:
            self.safety.watchdog.require(cam)
        self.safety.watchdog.require("state")
        self.safety.watchdog.require("policy")
        if getattr(adapter, "needs_joint_seed", False):
            # The IK seed must be as fresh as the EE pose: with the pose on its own topic, joint states that stop
            # would otherwise seed every later IK with the arm's joints from before they stopped.
            self.safety.watchdog.require("joints")
        self.ticks = 0

    # -- inputs --------------------------------------------------------------
    def _from_future(self, what: str, stamp_s: float) -> bool:
        """A stamp ahead of the clock (beyond ``max_future_s``) is refused, with a warning: kept,
        it would make every later frame look older (frozen input) and its negative age would
        keep the watchdog quiet. Arrival order, not the stamp, decides which frame is newest,
        so a clock that jumps back (a simulator reset) does not freeze the input either."""
        ahead = float(stamp_s) - self.clock()
        if ahead > self.safety.config.max_future_s:
            self.safety.note_future(what, ahead)
            return True
        return False

    def on_image(self, camera: str, stamp_s: float, payload) -> None:
        if camera not in self.cameras:
            raise ValueError(f"unknown camera {camera!r}; configured cameras: {self.cameras}")
        if self._from_future(camera, stamp_s):
            return
        self._frames[camera] = (float(stamp_s), payload)
        self.safety.feed(camera, stamp_s)

    def on_state(self, pose6, stamp_s: float, joints=None, gripper: float | None = None) -> None:
        if self._from_future("state", stamp_s):
            return
        self.pose6 = np.asarray(pose6, dtype=np.float64).reshape(6)
        if gripper is not None:
            self.gripper = float(gripper)
        if joints is not None:
            self.joints = np.asarray(joints, dtype=np.float64).reshape(-1)
            self.safety.feed("joints", stamp_s)
        self.safety.feed("state", stamp_s)

    def on_joints(self, joints, stamp_s: float) -> None:
        """The arm's measured joints alone (the EE pose comes from another topic): the adapter's IK seed."""
        if self._from_future("joints", stamp_s):
            return
        self.joints = np.asarray(joints, dtype=np.float64).reshape(-1)
        self.safety.feed("joints", stamp_s)

    def set_instruction(self, text: str) -> None:
        text = str(text).strip()
        if text != self.instruction:
            self.log.info(f"policy: new instruction {text!r}")
            self.instruction = text

    def reset(self) -> None:
        """Forget frames, state and input ages (a new episode / a simulator reset): nothing is
        sent until fresh frames and state arrive."""
        self._frames.clear()
        self.pose6 = None
        self.joints = None
        self.gripper = None
        self._last_gripper = 1.0
        self.applier.reset()
        self.safety.watchdog.clear()

    def reset_estop(self) -> None:
        """Clear a latched e-stop and start over from the measured pose: the delta base (the last commanded target)
        and the policy's queued or ensembled action chunks date from before the stop, so both are dropped."""
        self.safety.reset_estop()
        self.applier.reset()
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    # -- one control step -------------------------------------------------------
    def tick(self) -> TickResult:
        self.ticks += 1
        now = self.clock()
        missing = [c for c in self.cameras if c not in self._frames]
        if missing or self.pose6 is None or not self.instruction:
            why = []
            if missing:
                why.append(f"no image yet from {missing}")
            if self.pose6 is None:
                why.append("no robot state yet")
            if not self.instruction:
                why.append("no instruction (set the 'instruction' parameter or publish on the instruction topic)")
            # Let the safety layer log it (throttled) with the same wording.
            return TickResult(self.safety._block(None, ["waiting: " + "; ".join(why)], [], now))

        stamps = {c: self._frames[c][0] for c in self.cameras}
        try:
            images = {c: self.decode(self._frames[c][1]) for c in self.cameras}
        except ValueError as exc:
            return TickResult(self.safety._block(None, [f"image decode failed: {exc}"], [], now), image_stamps=stamps)
        pose = self.pose6.copy()
        t0 = time.perf_counter()
        try:
            if getattr(self.policy, "uses_state", False):
                grip = self.gripper if self.gripper is not None else self._last_gripper
                state = np.concatenate([pose, [grip]]).astype(np.float32)  # observation.state layout
                action = np.asarray(self.policy.act(images, self.instruction, state), dtype=np.float64)
            else:
                action = np.asarray(self.policy.act(images, self.instruction), dtype=np.float64)
        except (ValueError, RuntimeError) as exc:  # NonFiniteActionError is a RuntimeError
            return TickResult(self.safety._block(None, [f"policy failed: {exc}"], [], self.clock()), image_stamps=stamps)
        inference_s = time.perf_counter() - t0
        # The policy output is as old as the oldest frame it was computed from: with slow
        # inference it goes stale even when the cameras are fresh.
        self.safety.feed("policy", min(stamps.values()))
        try:
            target = self.applier.target(action, pose, stamp_s=now)
        except ValueError as exc:
            return TickResult(self.safety._block(None, [f"policy action refused: {exc}"], [], self.clock()),
                              action, image_stamps=stamps)
        decision = self.safety.check(target, pose, self.clock())
        result = TickResult(decision, action, target, image_stamps=stamps, inference_s=inference_s)
        if decision.send and self.adapter is not None:
            try:
                result.publications = self.adapter.publications(decision.command, self.joints)
            except UnreachableCommand as exc:
                self.safety.revoke(decision, f"adapter refused: {exc}", self.clock())
        if decision.send:
            self.applier.commanded(decision.command)
            self._last_gripper = float(decision.command.gripper)
        return result


# ----------------------------------------------------------- latent actions ---

def load_latent_model(checkpoint: str, device: str = "cpu"):
    """The LAM runtime (``lam_ros.latent_actions``) with ``infer(frames_t, frames_tk)``, loaded once."""
    from lam_ros.latent_actions import LatentActionRuntime  # torch: only when really loading

    return LatentActionRuntime.from_checkpoint(checkpoint, device=device)


@dataclass
class LatentResult:
    stamp: float  # time of the later frame set (the pair's header stamp)
    stamp_prev: float
    codes: np.ndarray  # (n_tokens,) int64
    embeddings: np.ndarray  # (n_tokens, dim) float32
    skew: float  # camera skew of the later set (s)
    latency_s: float  # compute time


class LatentActionStream:
    """Synchronised camera sets -> latent actions over a frame gap.

    Keeps the decoded sets of the last ``frame_gap_s + tolerance_s`` seconds;
    when a new set completes, the set whose time is nearest to
    ``t - frame_gap_s`` (within ``tolerance_s``) is its partner.
    """

    def __init__(self, model, cameras, frame_gap_s: float = 0.6, slop: float = 0.02, queue_size: int = 10,
                 tolerance_s: float | None = None, decode: Decoder = _identity):
        from lam_ros.recording.sync import ApproximateTimeSync

        if not frame_gap_s > 0:
            raise ValueError(f"frame_gap_s must be > 0, got {frame_gap_s}")
        self.model = model
        self.cameras = list(cameras)
        self.frame_gap_s = float(frame_gap_s)
        self.tolerance_s = float(tolerance_s) if tolerance_s is not None else max(0.05, 0.25 * frame_gap_s)
        self.sync = ApproximateTimeSync(self.cameras, queue_size=queue_size, slop=slop)
        self.decode = decode
        self._history: deque[tuple[float, dict[str, np.ndarray]]] = deque()
        self.stats = {"sets": 0, "pairs": 0, "no_partner": 0, "late": 0}
        self.last_skew = 0.0

    def add(self, camera: str, stamp_s: float, payload) -> LatentResult | None:
        matched = self.sync.add(camera, stamp_s, payload)
        if matched is None:
            return None
        t = matched.time
        late = bool(self._history) and t < self._history[-1][0]
        if late and t < self._history[0][0] - self.tolerance_s:  # older than every kept set: the clock went back
            self._history.clear()  # (a simulator reset): start over
            late = False
        self.stats["sets"] += 1
        self.last_skew = matched.skew
        frames = {c: self.decode(matched.items[c].data) for c in self.cameras}
        if late:
            # A set completed by a frame that arrived after a newer set (the synchroniser keeps older unmatched
            # frames): it is a partner for later sets, kept in time order; it starts no pair itself.
            self.stats["late"] += 1
            self._history.insert(bisect.bisect([h[0] for h in self._history], t), (t, frames))
            return None
        while self._history and self._history[0][0] < t - self.frame_gap_s - self.tolerance_s:
            self._history.popleft()
        partner = None
        if self._history:
            best = min(self._history, key=lambda h: abs(h[0] - (t - self.frame_gap_s)))
            if abs(best[0] - (t - self.frame_gap_s)) <= self.tolerance_s:
                partner = best
        self._history.append((t, frames))
        if partner is None:
            self.stats["no_partner"] += 1
            return None
        t0 = time.perf_counter()
        codes, emb = self.model.infer(
            {c: partner[1][c][None] for c in self.cameras}, {c: frames[c][None] for c in self.cameras}
        )
        latency = time.perf_counter() - t0
        self.stats["pairs"] += 1
        codes = np.asarray(codes, dtype=np.int64)[0]
        emb = np.asarray(emb, dtype=np.float32)[0]
        return LatentResult(t, partner[0], codes, emb, matched.skew, latency)

    def dropped(self) -> dict[str, int]:
        return {c: self.sync.stats.dropped(c) for c in self.cameras}

    def reset(self) -> None:
        """Forget the frame sets of a previous episode (no pair spans a reset)."""
        from lam_ros.recording.sync import ApproximateTimeSync

        self._history.clear()
        self.sync = ApproximateTimeSync(self.cameras, queue_size=self.sync.queue_size, slop=self.sync.slop)


# ------------------------------------------------------ in-process simulator ---

@dataclass
class SimRunSummary:
    episodes: int
    successes: int
    steps: int
    sent: int
    blocked: dict
    latencies_s: list  # camera frame -> checked command, wall clock, per control step
    latent_pairs: int
    wall_s: float

    def to_dict(self) -> dict:
        lat = np.asarray(self.latencies_s) if self.latencies_s else np.zeros(1)
        return {
            "episodes": self.episodes,
            "success_rate": self.successes / max(self.episodes, 1),
            "steps": self.steps,
            "commands_sent": self.sent,
            "blocked_reasons": dict(self.blocked),
            "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
            "latency_p99_ms": float(np.percentile(lat, 99) * 1e3),
            "sustained_hz": self.steps / max(self.wall_s, 1e-9),
            "latent_pairs": self.latent_pairs,
        }


def run_sim(env, policy, safety: SafetyLayer, cameras=None, instruction: str = "", episodes: int = 1,
            max_steps: int | None = None, seed: int = 0, latent_model=None, frame_gap_s: float = 0.6,
            on_step: Callable | None = None) -> SimRunSummary:
    """The whole pipeline in one process against the simulator.

    cameras -> (sync -> latent actions) -> policy -> safety -> end-effector
    command -> ``env.step_absolute``. Time stamps are simulator time, so the
    watchdog sees the simulated camera/state ages; latency is measured on the
    wall clock from "frames available" to "command checked".
    """
    cameras = list(cameras or getattr(policy, "cameras", None) or env.cameras)
    sim_t = [0.0]
    controller = PolicyController(policy, safety, cameras, instruction or getattr(env, "instruction", ""),
                                  clock=lambda: sim_t[0])
    stream = LatentActionStream(latent_model, cameras, frame_gap_s=frame_gap_s) if latent_model is not None else None
    latencies, blocked = [], {}
    successes = steps = sent = 0
    start = time.perf_counter()
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        if hasattr(policy, "reset"):
            policy.reset()
        controller.reset()  # no frame, state or stamp of the previous episode carries over
        if stream is not None:
            stream.reset()
        sim_t[0] = float(info.get("sim_time", 0.0))
        limit = max_steps or getattr(env, "max_episode_steps", 60)
        for _ in range(limit):
            t = sim_t[0]
            t0 = time.perf_counter()
            for cam in cameras:
                controller.on_image(cam, t, obs["images"][cam])
                if stream is not None:
                    stream.add(cam, t, obs["images"][cam])
            controller.on_state(obs["ee_pose"], t, gripper=float(obs["gripper"][0]))
            result = controller.tick()
            latencies.append(time.perf_counter() - t0)
            if result.sent:
                cmd = result.decision.command
                sent += 1
                obs, _, terminated, truncated, info = env.step_absolute(cmd.pose6, cmd.gripper)
            else:
                key = result.decision.reason.split(":")[0][:60]
                blocked[key] = blocked.get(key, 0) + 1
                obs, _, terminated, truncated, info = env.step_absolute(obs["ee_pose"], float(obs["gripper"][0]))
            steps += 1
            sim_t[0] = float(info.get("sim_time", t + 0.2))
            if on_step is not None:
                on_step(result, obs, info)
            if terminated or truncated:
                break
        successes += int(bool(info.get("success", False)))
    return SimRunSummary(episodes, successes, steps, sent, blocked, latencies,
                         stream.stats["pairs"] if stream is not None else 0, time.perf_counter() - start)
