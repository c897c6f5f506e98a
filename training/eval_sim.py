"""Closed-loop evaluation in the simulator (SIMPLER protocol, FACTS section 5).

Each agent (any checkpoint ``lam_ros.policy.load_policy`` opens: our VLA, a LeRobot
ACT / Diffusion directory, the privileged-state baseline; or the scripted expert as
the upper reference) runs the same seeded episodes per task; success is
judged at the final step, grasp / consecutive grasp / moved-correct-object if they
happened at any step. ``placed`` (the success condition held at some step) beside
``success`` separates "never got there" from "got there and undid it" (a policy that
knocks the placed object off, or picks it up again, before the episode ends). Writes ``results.json`` (per-episode records, seeds),
``results.md`` (the table) and multi-view rollout videos.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)
METRICS = ("success", "placed", "grasp", "consecutive_grasp", "moved_correct_object")
INFO_KEYS = {"placed": "success"}  # any-step metrics named differently from the env's info key
EXPERT = "expert"


def write_video(frames: list[np.ndarray], path: Path, fps: int = 5) -> Path:
    """uint8 (H, W, 3) frames -> H.264 mp4 through PyAV."""
    import av

    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2  # yuv420p needs even sizes
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h2, :w2]), format="rgb24")))
        container.mux(stream.encode())
    return path


def tile(images: dict[str, np.ndarray], cameras: list[str]) -> np.ndarray:
    return np.concatenate([images[c] for c in cameras], axis=1)


def rollout(env, act: Callable[[dict], np.ndarray], seed: int, max_steps: int | None = None, record: bool = False) -> dict:
    """One episode; ``act(obs) -> (7,)``. Returns metrics, steps, the objects' settled start poses
    (xyz + quaternion wxyz, to see which placements fail) and (optionally) frames."""
    obs, reset_info = env.reset(seed=seed)
    cameras = list(obs["images"])
    frames = [tile(obs["images"], cameras)] if record else []
    seen = {m: False for m in METRICS}
    info: dict = {}
    limit = env.unwrapped.max_episode_steps if max_steps is None else min(max_steps, env.unwrapped.max_episode_steps)
    steps = 0
    for steps in range(1, limit + 1):  # noqa: B007 - `steps` is the episode length after the loop
        obs, _, terminated, truncated, info = env.step(act(obs))
        for m in METRICS[1:]:
            seen[m] = seen[m] or bool(info.get(INFO_KEYS.get(m, m), False))
        if record:
            frames.append(tile(obs["images"], cameras))
        if terminated or truncated:
            break
    result = {"seed": int(seed), "steps": steps, "success": bool(info.get("success", False))}
    if "object_poses" in reset_info:
        result["start"] = {k: np.round(np.asarray(v, dtype=float), 4).tolist() for k, v in reset_info["object_poses"].items()}
    result.update({m: seen[m] for m in METRICS[1:]})
    if record:
        result["frames"] = frames
    return result


def policy_act(env, policy, instruction: str) -> Callable[[dict], np.ndarray]:
    """``act(obs)`` for a loaded policy in the simulator: camera frames, the robot state
    and (for the privileged baseline) the objects' poses, exactly as the policy was trained."""

    privileged = getattr(policy, "needs_env_state", False)

    def act(obs):
        state = env.unwrapped.state_vector(obs)
        if not privileged:
            return policy.act(obs.get("images", {}), instruction, state)
        objects = np.concatenate(list(env.unwrapped.object_poses().values())).astype(np.float32)
        return policy.act(obs.get("images", {}), instruction, state, env_state=objects)

    return act


def evaluate(
    agents: dict[str, str],
    out_dir: str | Path,
    *,
    robot: str = "widowx",
    tasks: list[str] | None = None,
    episodes: int = 24,
    seed: int = 0,
    layout: str = "uniform",
    image_size: int | None = None,
    video_episodes: int = 1,
    max_steps: int | None = None,
    device: str = "cpu",
    executor: dict | None = None,
    frame_codec: str | None = "auto",
) -> dict:
    """``agents``: name -> checkpoint directory, or name -> "expert". ``image_size``: the
    square render size (default: the resolution each checkpoint's training data was
    recorded at, else 128); every policy resizes frames to its own input size.
    ``executor``: chunk-executor settings (ensemble_decay, replan_every, sticky_gripper).
    ``layout``: object placement ("uniform" or "simpler", ``sim.tasks.sample_placement``).
    ``frame_codec``: how VLA and LeRobot policies see camera frames ("auto": through the video codec their training
    frames went through, as the checkpoint records; "off": raw renders; ``lam_ros.policy.Policy``)."""
    import sim
    from lam_ros.action_convention import BRIDGE_DELTA
    from lam_ros.policy import load_policy

    tasks = list(sim.TASKS) if not tasks else tasks
    for t in tasks:
        if t not in sim.TASKS:
            raise ValueError(f"unknown task {t!r}; known: {', '.join(sim.TASKS)}")
    if robot not in sim.ROBOTS:
        raise ValueError(f"unknown robot {robot!r}; known: {', '.join(sim.ROBOTS)}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    seeds = [seed + i for i in range(episodes)]
    policies = {name: load_policy(src, device=device, robot=robot, action_dim=7, frame_codec=frame_codec, **(executor or {}))
                for name, src in agents.items() if src != EXPERT}
    for name, policy in policies.items():
        if policy.action_convention != BRIDGE_DELTA:
            raise ValueError(f"agent {name!r} ({agents[name]}) was trained on {policy.action_convention!r} actions; "
                             f"the simulator's step() executes {BRIDGE_DELTA!r}")
    results: dict = {"robot": robot, "tasks": tasks, "seeds": seeds, "layout": layout, "agents": dict(agents), "episodes": {}, "summary": {},
                     "executor": dict(executor or {}), "frame_codec": frame_codec}
    for name in agents:
        policy = policies.get(name)
        # Videos show every camera side by side: the policy's own views plus the third-person one.
        cameras = list(dict.fromkeys([*(policy.cameras if policy is not None else []), "third_person", "wrist"]))
        size = image_size or recorded_image_size(policy) or 128
        results.setdefault("image_size", {})[name] = size
        for task in tasks:
            env = sim.make_env(robot=robot, task=task, cameras=tuple(cameras), image_size=(size, size),
                               layout=layout)
            if policy is not None:
                act, reset = policy_act(env, policy, env.unwrapped.instruction), policy.reset
            else:
                expert = sim.make_expert(env)
                act, reset = expert.act, expert.reset
            records = []
            for i, s in enumerate(seeds):
                reset()
                rec = rollout(env, act, s, max_steps=max_steps, record=i < video_episodes)
                if "frames" in rec:
                    rec["video"] = str(write_video(rec.pop("frames"), out_dir / "videos" / f"{name}_{task}_seed{s}.mp4").relative_to(out_dir))
                records.append(rec)
            env.close()
            results["episodes"].setdefault(name, {})[task] = records
            summary = {m: float(np.mean([r[m] for r in records])) for m in METRICS}
            results["summary"].setdefault(name, {})[task] = summary
            log.info("%s %s: success %.2f grasp %.2f", name, task, summary["success"], summary["grasp"])
        per_task = results["summary"][name]
        results["summary"][name]["average"] = {m: float(np.mean([per_task[t][m] for t in tasks])) for m in METRICS}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "results.md").write_text(markdown_table(results))
    return results


def merge_results(parts: list[str], out_dir: str | Path) -> dict:
    """One table from evaluations run separately (e.g. one process per agent): ``parts`` are
    subfolders of ``out_dir``, each holding an eval-sim ``results.json``. They must share
    robot, tasks, seeds, layout and executor (else a ValueError names the difference); agent names
    must be distinct. Video paths are rewritten relative to ``out_dir``. Writes results.json / .md."""
    out_dir = Path(out_dir)
    merged: dict | None = None
    for sub in parts:
        part = json.loads((out_dir / sub / "results.json").read_text())
        for records in (r for per_task in part["episodes"].values() for r in per_task.values()):
            for rec in records:
                if "video" in rec:
                    rec["video"] = str(Path(sub) / rec["video"])
        if merged is None:
            merged = part
            continue
        for key in ("robot", "tasks", "seeds", "layout", "executor", "frame_codec"):
            if part.get(key) != merged.get(key):
                raise ValueError(f"cannot merge {sub}: its {key} is {part.get(key)!r}, not {merged.get(key)!r}")
        clash = set(part["agents"]) & set(merged["agents"])
        if clash:
            raise ValueError(f"cannot merge {sub}: agent name(s) {sorted(clash)} appear twice")
        for key in ("agents", "episodes", "summary", "image_size"):
            merged.setdefault(key, {}).update(part.get(key, {}))
    if merged is None:
        raise ValueError("nothing to merge")
    (out_dir / "results.json").write_text(json.dumps(merged, indent=1))
    (out_dir / "results.md").write_text(markdown_table(merged))
    return merged


def recorded_image_size(policy) -> int | None:
    """The (square) resolution a checkpoint's training frames were recorded at, when it says."""
    src = getattr(getattr(policy, "config", None), "source_image_size", None)
    return int(src[0]) if src and src[0] == src[1] else None


def markdown_table(results: dict) -> str:
    tasks = results["tasks"]
    lines = [
        f"Closed-loop evaluation, robot {results['robot']}, {len(results['seeds'])} episodes per task "
        f"(seeds {results['seeds'][0]}..{results['seeds'][-1]}, {results.get('layout', 'uniform')} layout). Success at the final step % "
        "(placed at some step %, grasp %).",
        "",
        "| agent | " + " | ".join(tasks) + " | average |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for name, per_task in results["summary"].items():
        cells = [f"{100 * per_task[t]['success']:.1f} ({100 * per_task[t].get('placed', float('nan')):.1f}, "
                 f"{100 * per_task[t]['grasp']:.1f})" for t in [*tasks, "average"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
