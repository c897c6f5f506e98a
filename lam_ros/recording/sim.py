"""Simulator episodes (scripted expert, later policy rollouts) into a LeRobot dataset.

The stored action is ``info["applied_action"]``: the Bridge delta the arm
controller actually executed after clamping, never the one requested (with
``action_noise``, DART-style, the label is the expert's clean action instead,
clipped to the nominal action range, while a perturbed one is executed). All
cameras render the same physics state, so their capture time is the sim time
of the observation; they still pass through the shared sync core so the
dataset carries the same audit features (skew 0) as bag and live recordings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


from lam_ros.recording.episode import EpisodeAssembler, SignalBuffer
from lam_ros.recording.report import RecordingReport
from lam_ros.recording.writer import DEFAULT_VCODEC, RecordingWriter, build_features

from lam_ros.action_convention import BRIDGE_DELTA, CONVENTIONS
from sim.env import ACTION_HIGH, ACTION_LOW

STATE_NAMES = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
ACTION_NAMES = CONVENTIONS[BRIDGE_DELTA]
POSE_FIELDS = ("x", "y", "z", "qw", "qx", "qy", "qz")


def env_state_names(object_names) -> list[str]:
    """Names of ``observation.environment_state``: each task object's xyz + quaternion (wxyz)."""
    return [f"{obj}.{f}" for obj in object_names for f in POSE_FIELDS]


def record_sim(root, robot: str = "widowx", task: str = "carrot_on_plate", episodes: int = 1,
               cameras: Sequence[str] = ("third_person", "side", "wrist"), image_size=(128, 128),
               randomize_cameras: bool = False, seed: int = 0, max_steps: int | None = None,
               policy: Callable | None = None, only_success: bool = False, resume: bool = False,
               vcodec: str = DEFAULT_VCODEC, progress: bool = True, env=None,
               stop_after_success: int | None = None, noise=None, camera_ranges=None,
               action_noise: float = 0.0, layout: str = "uniform", commit_every: int = 1) -> RecordingReport:
    """Record ``episodes`` committed episodes. ``policy(obs) -> action``; default: the scripted expert.

    Episode i uses seed ``seed + i`` (after resume: continues from the number
    of committed episodes). With ``only_success`` failed attempts are discarded
    and counted in the report, and seeds keep increasing until enough succeed.
    ``stop_after_success=k`` ends an episode k control steps after the task first
    succeeds, as a human demonstrator stops recording (the scripted expert would
    otherwise idle until the 60-step limit, and those no-op frames teach a policy
    to stand still); None records the full SIMPLER episode length.
    The dataset stores the Bridge delta actually applied (``bridge_delta``
    convention, in meta/info.json) and the objects' poses as
    ``observation.environment_state`` (privileged state for state-based baselines).
    ``action_noise=s`` (metres) executes the expert's translation plus Gaussian noise of
    std s while storing the clean expert action (DART, Laskey et al. 2017): the
    demonstrations then show how the expert recovers from the small drifts a learned
    policy makes, which plain demonstrations never visit.
    ``layout``: object placement, "uniform" or "simpler" (``sim.tasks.sample_placement``;
    stored in meta/info.json so evaluation can use the same one).
    ``commit_every``: episodes per crash-safe commit (``RecordingWriter``).
    """
    if not (isinstance(action_noise, (int, float)) and 0.0 <= action_noise <= 0.05):
        raise ValueError(f"action_noise must be a number in [0, 0.05] m, got {action_noise!r}")
    if stop_after_success is not None and stop_after_success < 0:
        raise ValueError(f"stop_after_success must be >= 0 or None, got {stop_after_success}")
    import sim as simpkg
    from tqdm import tqdm

    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    env = env or simpkg.make_env(robot=robot, task=task, cameras=tuple(cameras), image_size=image_size,
                                 randomize_cameras=randomize_cameras, camera_ranges=camera_ranges, noise=noise,
                                 layout=layout)
    cams = list(env.cameras)
    fps = int(round(env.control_hz))
    objects = list(env.unwrapped.object_poses())
    features = build_features({c: (env.image_height, env.image_width) for c in cams}, STATE_NAMES, ACTION_NAMES,
                              env_state_names(objects))
    metadata = {"action_convention": BRIDGE_DELTA, "source": "record-sim", "task": env.unwrapped.task.name,
                "stop_after_success": stop_after_success, "randomize_cameras": bool(env.unwrapped.randomize_cameras),
                "action_noise": float(action_noise), "layout": env.unwrapped.layout}
    from sim.noise import recording_metadata

    metadata.update(recording_metadata(env, root, resume))  # exogenous_noise, camera_randomization
    writer = RecordingWriter(root, fps, features, robot_type=robot, resume=resume, vcodec=vcodec, metadata=metadata,
                             commit_every=commit_every)
    report = RecordingReport.load_or_new(root, cams, source="record-sim", committed_episodes=writer.episodes)
    expert = None if policy is not None else simpkg.make_expert(env)
    attempt = writer.episodes
    target = writer.episodes + episodes
    bar = tqdm(total=episodes, desc=f"record-sim {robot}/{task}", unit="ep", disable=not progress)
    try:
        while writer.episodes < target:
            ep_seed = seed + attempt
            attempt += 1
            success, n, asm = _episode(env, writer, expert, policy, ep_seed, max_steps, fps, cams, stop_after_success,
                                       action_noise)
            if only_success and not success:
                writer.discard_episode()
                report.warn("unsuccessful expert episode discarded (--only-success)")
                continue
            report.add_episode(writer.episodes, n, asm.resampler.held, asm.dropped(), asm.skews,
                               source=f"seed {ep_seed}, success={success}", warnings=asm.collect_warnings())
            writer.save_episode(report=report)
            bar.update(1)
    finally:
        bar.close()
        writer.discard_episode()
        writer.close()
        env.close()
    return report


def _object_state(env) -> np.ndarray:
    return np.concatenate(list(env.unwrapped.object_poses().values())).astype(np.float32)


def _episode(env, writer, expert, policy, ep_seed, max_steps, fps, cams, stop_after_success=None, action_noise=0.0):
    obs, info = env.reset(seed=ep_seed)
    if expert is not None:
        expert.reset()
    asm = EpisodeAssembler(cams, fps, slop=1e-3, timeout=10.0 / fps)
    state, action = SignalBuffer("state", 7), SignalBuffer("applied action", 7)
    objects = _object_state(env)
    env_state = SignalBuffer("object poses", len(objects))
    noise_rng = np.random.default_rng(ep_seed + 7_919)
    period = 1.0 / fps
    steps = min(env.max_episode_steps, max_steps or env.max_episode_steps)
    frames = []
    success = False
    succeeded_at = None
    for step in range(steps):
        t = float(info["sim_time"])
        requested = np.asarray(expert.act(obs) if expert is not None else policy(obs), dtype=np.float64)
        env_state.add(t, objects)
        executed = requested
        if action_noise > 0:
            executed = requested.copy()
            executed[:3] += noise_rng.normal(0.0, action_noise, 3)
        next_obs, _, terminated, truncated, info = env.step(executed)
        objects = _object_state(env)
        state.add(t, env.state_vector(obs))
        # the command that acted on this frame (DART: the clean expert command it was perturbed from)
        label = info["applied_action"] if action_noise == 0 else np.clip(requested, ACTION_LOW, ACTION_HIGH)
        action.add(t + period / 2, label)
        for cam in cams:
            frames += asm.add_image(cam, t, obs["images"][cam])
        obs = next_obs
        success = bool(info.get("success", False))
        if success and succeeded_at is None:
            succeeded_at = step
        if terminated or truncated:
            break
        if stop_after_success is not None and succeeded_at is not None and step - succeeded_at >= stop_after_success:
            break
    frames += asm.flush()
    task_text = env.instruction
    for gf in frames:
        s = state.at(gf.grid_time + 1e-6)
        a = action.command_for(gf.grid_time, period)
        frame = asm.lerobot_frame(gf, lambda cam, img: img, s, a, task_text)
        frame["observation.environment_state"] = env_state.at(gf.grid_time + 1e-6)
        writer.add_frame(frame)
    return success, len(frames), asm
