"""``lam-ros``: the one command-line entry point.

Each subcommand lives in its own module (``lam_ros/commands/<name>.py``) that
exposes ``configure(parser)`` and ``run(args) -> int``. Those modules keep heavy
imports (torch, mujoco, lerobot) inside ``run`` so ``lam-ros --help`` answers
instantly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module under lam_ros.commands, one-line help). Order = order in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the main job: run the whole pipeline on a fresh machine (CPU, offline)"),
    "sim-expert": ("sim_expert", "run the scripted expert in the simulator; write multi-view videos + a success table"),
    "record-sim": ("record_sim", "record simulator episodes (scripted expert) into a crash-safe multi-view LeRobot dataset"),
    "bag2lerobot": ("bag2lerobot", "convert ROS 2 bags (sqlite3/mcap, no ROS needed) into a synchronized multi-view LeRobot dataset"),
    "recover": ("recover", "make a recording readable again after a crash (keeps every committed episode)"),
    "train-lam": ("train_lam", "train a latent action model (MVP-LAM / single / AC / cycle) on multi-view LeRobot data"),
    "eval-lam": ("eval_lam", "action-centricity evaluation of a latent action model (MI, probe, AC, view leakage)"),
    "pretrain-vla": ("pretrain_vla", "VLA stage 1: train the backbone to predict LAM latent-action codes (no robot actions)"),
    "finetune-vla": ("finetune_vla", "VLA stage 2: LoRA + action-chunk decoder on action-labelled episodes"),
    "train-lerobot": ("train_lerobot", "train LeRobot's own ACT / Diffusion Policy on lam_ros LeRobot datasets (random-init backbones)"),
    "eval-sim": ("eval_sim", "closed-loop success/grasp table of VLA checkpoints and the scripted expert in the simulator"),
    "run": ("run", "run the policy pipeline in one process against the simulator (no ROS): cameras -> policy -> safety -> sim"),
    "sim-envs": ("sim_envs", "list the registered simulator environments (robot x task)"),
}


def is_main_process() -> bool:
    """False in the non-zero ranks of a torchrun / accelerate launch: they stay quiet."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


class LamRosError(Exception):
    """An error caused by bad user input; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lam-ros",
        description=(
            "lam_ros: latent-action VLA policies from MuJoCo simulation to WidowX 250 and AgileX Piper arms. "
            "Run `lam-ros <command> --help` for the options of one command."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"lam_ros.commands.{module_name}")
        cmd_parser = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(cmd_parser)
        cmd_parser.set_defaults(_run=module.run)
    return parser


def _quiet_per_episode_library_lines(record: logging.LogRecord) -> bool:
    """Drop lerobot's "Using video codec: h264", which it logs at INFO on the root logger for every camera of
    every episode it encodes (600 lines in a demo's recording, burying the lines that matter). -v keeps it."""
    return not (record.levelno <= logging.INFO and record.module == "video_utils"
                and record.getMessage().startswith("Using video codec"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_per_episode_library_lines)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (LamRosError, ValueError, FileNotFoundError) as exc:
        # Bad input: one clear line naming the problem, no traceback
        # (pass -v to get the traceback as well).
        if args.verbose:
            logging.exception("lam-ros %s failed", args.command)
        print(f"lam-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lam-ros {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
