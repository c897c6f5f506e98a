"""The main job on a fresh machine: the lam_ros pipeline on the CPU, offline.

Stage `expert`: run the scripted expert on every task, for each robot, in the
multi-view MuJoCo simulation, and write multi-view rollout videos plus a
success table (JSON + markdown) under OUT/expert/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

STAGES = ("expert",)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--robots", default="widowx,piper", help="comma-separated robots (default: %(default)s)")
    parser.add_argument("--tasks", default="all", help="comma-separated tasks or 'all' (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=4, help="expert episodes per task and robot (default: %(default)s)")
    parser.add_argument("--image-size", default="128x128", help="HxW of every camera (default: %(default)s)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"stages to run, of {', '.join(STAGES)} (default: all)")


def _run_subcommand(module, argv: list[str]) -> int:
    """Run another lam-ros subcommand in-process with its own argument parser."""
    sub = argparse.ArgumentParser()
    module.configure(sub)
    return int(module.run(sub.parse_args(argv)) or 0)


def run(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known stages: {', '.join(STAGES)}")
    started = time.monotonic()
    if "expert" in stages:
        from lam_ros.commands import sim_expert

        for robot in args.robots.split(","):
            code = _run_subcommand(sim_expert, [
                "--robot", robot.strip(), "--tasks", args.tasks, "--episodes", str(args.episodes),
                "--image-size", args.image_size, "--randomize-cameras", "--out", str(args.out / "expert" / robot.strip()),
            ])
            if code:
                return code
    print(f"demo: finished in {time.monotonic() - started:.0f} s; results under {args.out}")
    return 0
