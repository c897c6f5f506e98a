"""Run the scripted expert in the MuJoCo simulator and report its success per task and robot.

For every robot x task it runs --episodes seeded episodes (seeds --seed,
--seed+1, ...), writes one mp4 per episode with the camera views side by side
(unless --no-video), and writes the success table as success_table.json and
success_table.md in --out (per task and robot: success, grasp, consecutive
grasp and moved-correct-object rates, plus the seeds and per-episode results).

Example:
  lam-ros sim-expert --robot all --tasks all --episodes 24 \\
      --cameras third_person,side,wrist --image-size 128x128 --randomize-cameras --out runs/expert
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ALL = "all"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", default="widowx", help="widowx, piper or all (default: widowx)")
    parser.add_argument("--tasks", default=ALL, help="comma-separated task names or all (default: all)")
    parser.add_argument("--episodes", type=int, default=24, help="episodes per robot and task (default: 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    parser.add_argument("--cameras", default="third_person,side,wrist",
                        help="comma-separated views in each video (default: third_person,side,wrist)")
    parser.add_argument("--image-size", default="128x128", help="WIDTHxHEIGHT, 64x64..640x480 (default: 128x128)")
    parser.add_argument("--randomize-cameras", action="store_true",
                        help="randomise the external camera poses per episode (from the episode seed)")
    from sim.noise import knob_help

    parser.add_argument("--noise", default="none",
                        help="exogenous noise, KNOB=VALUE,... e.g. camera_motion=1,distractors=4,lighting=1 (default none). "
                             "Knobs: " + knob_help())
    parser.add_argument("--no-video", action="store_true", help="skip rendering and videos (fast success table)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")


def _parse_list(value: str, known: tuple[str, ...], what: str) -> list[str]:
    if value.strip() == ALL:
        return list(known)
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ValueError(f"--{what} is empty")
    for item in items:
        if item not in known:
            raise ValueError(f"unknown {what.rstrip('s')} {item!r}; known: {', '.join(known)} or {ALL}")
    return items


class VideoWriter:
    """mp4 (H.264 if the bundled FFmpeg has it, else MPEG-4 part 2) via PyAV."""

    def __init__(self, path: Path, fps: float):
        import av

        self.path, self.fps = path, fps
        self._container = av.open(str(path), mode="w")
        self._stream = None
        self._codec = next(c for c in ("libx264", "h264", "libopenh264", "mpeg4") if _has_encoder(c))

    def write(self, frame) -> None:
        import av
        import numpy as np

        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p needs even sizes
        if self._stream is None:
            self._stream = self._container.add_stream(self._codec, rate=int(round(self.fps)))
            self._stream.height, self._stream.width = frame.shape[:2]
            self._stream.pix_fmt = "yuv420p"
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()


def _has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # noqa: BLE001 - PyAV raises several types for a missing codec
        return False


RATE_KEYS = ("success", "grasp", "consecutive_grasp", "moved_correct_object")


def summarize(episodes: list[dict]) -> dict:
    """Rates over episodes, plus the seeds and the per-episode results."""
    n = len(episodes)
    out = {f"{k}_rate": (sum(bool(e[k]) for e in episodes) / n if n else 0.0) for k in RATE_KEYS}
    out.update(episodes=n, successes=sum(bool(e["success"]) for e in episodes),
               seeds=[e["seed"] for e in episodes], per_episode=episodes)
    return out


def markdown_table(table: dict) -> str:
    lines = [
        "| robot | task | success | grasp | consecutive grasp | moved correct object | episodes | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for robot, tasks in table.items():
        for task, row in tasks.items():
            seeds = row["seeds"]
            seed_text = f"{seeds[0]}..{seeds[-1]}" if seeds else "-"
            lines.append(
                f"| {robot} | {task} | {row['success_rate']:.1%} ({row['successes']}/{row['episodes']}) | "
                f"{row['grasp_rate']:.1%} | {row['consecutive_grasp_rate']:.1%} | "
                f"{row['moved_correct_object_rate']:.1%} | {row['episodes']} | {seed_text} |"
            )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import sim
    from sim.cameras import check_camera_names, parse_image_size, tile_views
    from sim.experts import run_episode
    from tqdm import tqdm

    robots = _parse_list(args.robot, sim.ROBOTS, "robot")
    tasks = _parse_list(args.tasks, sim.TASKS, "tasks")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    cameras = () if args.no_video else check_camera_names(args.cameras)
    if not args.no_video and not cameras:
        raise ValueError("--cameras is empty (use --no-video to skip videos)")
    image_size = parse_image_size(args.image_size)
    from sim.noise import ExogenousNoise

    noise = ExogenousNoise.parse(args.noise)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    table: dict[str, dict[str, dict]] = {}
    started = time.time()
    progress = tqdm(total=len(robots) * len(tasks) * args.episodes, desc="expert episodes", unit="ep")
    for robot in robots:
        for task in tasks:
            env = sim.make_env(robot=robot, task=task, cameras=cameras, image_size=image_size,
                               randomize_cameras=args.randomize_cameras, noise=noise)
            episodes = []
            for seed in range(args.seed, args.seed + args.episodes):
                writer = None
                if cameras:
                    video_dir = out / "videos" / robot / task
                    video_dir.mkdir(parents=True, exist_ok=True)
                    writer = VideoWriter(video_dir / f"seed{seed:04d}.mp4", env.unwrapped.control_hz)

                def record(obs, action, info, writer=writer):
                    if writer is not None:
                        writer.write(tile_views(obs["images"]))

                try:
                    result = run_episode(env, seed, on_step=record)
                finally:
                    if writer is not None:
                        writer.close()
                if writer is not None:
                    result["video"] = str(writer.path.relative_to(out))
                episodes.append(result)
                progress.set_postfix(robot=robot, task=task, ok=sum(e["success"] for e in episodes))
                progress.update()
            env.close()
            table.setdefault(robot, {})[task] = summarize(episodes)
    progress.close()

    meta = {
        "command": "lam-ros sim-expert " + " ".join(
            [f"--robot {args.robot}", f"--tasks {args.tasks}", f"--episodes {args.episodes}", f"--seed {args.seed}"]
            + ([f"--cameras {','.join(cameras)}", f"--image-size {args.image_size}"] if cameras else ["--no-video"])
            + (["--randomize-cameras"] if args.randomize_cameras else [])
            + ([f"--noise {noise.describe()}"] if noise.active else [])
            + [f"--out {out}"]
        ),
        "cameras": list(cameras),
        "image_size": list(image_size),
        "randomize_cameras": bool(args.randomize_cameras),
        "exogenous_noise": noise.to_dict(),
        "seconds": round(time.time() - started, 1),
    }
    (out / "success_table.json").write_text(json.dumps({"meta": meta, "results": table}, indent=2))
    markdown = markdown_table(table)
    (out / "success_table.md").write_text(f"Command: `{meta['command']}`\n\n{markdown}")
    print(markdown, end="")
    print(f"wrote {out / 'success_table.json'}, {out / 'success_table.md'}"
          + (f" and {sum(len(t) for t in table.values()) * args.episodes} videos under {out / 'videos'}" if cameras else ""))
    return 0
