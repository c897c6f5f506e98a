"""Run the policy pipeline in one process, without ROS, against the MuJoCo simulator.

cameras -> (sync -> latent actions) -> policy -> safety -> end-effector
commands -> simulator: the same classes and parameters as
`ros2 launch lam_ros sim.launch.py`. Prints a JSON summary (success rate,
frame-to-command latency p50/p99, sustained rate, blocked commands).

Example:
  lam-ros run --sim --robot widowx --task carrot_on_plate --checkpoint runs/vla
"""

from __future__ import annotations

import argparse
import json


def _floats3(text: str):
    vals = [float(v) for v in text.split(",")]
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected x,y,z, got {text!r}")
    return tuple(vals)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim", action="store_true", help="run against the MuJoCo simulator (required for now)")
    parser.add_argument("--robot", default="widowx", choices=["widowx", "piper"])
    parser.add_argument("--task", default="carrot_on_plate")
    parser.add_argument("--checkpoint", required=True,
                        help="policy checkpoint: a finetuned VLA or a LeRobot ACT / Diffusion directory")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--cameras", default="", help="comma-separated; empty = the checkpoint's cameras")
    parser.add_argument("--image-size", default=None,
                        help="simulated camera resolution WxH (default: what the checkpoint's training data was "
                             "recorded at, else 128x128); the policy resizes frames to its own input size")
    parser.add_argument("--instruction", default="", help="empty = the task's instruction")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="per episode; default = the task's length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="compute commands but do not move the simulated arm")
    parser.add_argument("--stale-after-s", type=float, default=0.2)
    parser.add_argument("--max-step-translation-m", type=float, default=0.05)
    parser.add_argument("--max-step-rotation-rad", type=float, default=0.35)
    parser.add_argument("--workspace-min", type=_floats3, default=None, help="x,y,z (m); default = robot's box")
    parser.add_argument("--workspace-max", type=_floats3, default=None, help="x,y,z (m); default = robot's box")
    parser.add_argument("--lam-checkpoint", default="", help="also compute latent actions online with this LAM")
    parser.add_argument("--frame-gap-s", type=float, default=0.6)
    parser.add_argument("--report", default="", help="write the JSON summary to this file too")
    from lam_ros.commands.eval_sim import add_executor_args

    add_executor_args(parser)


def run(args) -> int:
    if not args.sim:
        raise ValueError("only --sim is supported in-process; on a robot use `ros2 launch lam_ros policy.launch.py`")
    import sim

    from lam_ros.adapters import ROBOTS
    from lam_ros.pipeline import run_sim
    from lam_ros.commands.eval_sim import executor_settings
    from lam_ros.policy import load_policy
    from lam_ros.safety import SafetyConfig, SafetyLayer
    from training.eval_sim import recorded_image_size

    policy = load_policy(args.checkpoint, device=args.device, robot=args.robot, **executor_settings(args))
    if getattr(policy, "needs_env_state", False):
        raise ValueError(f"{args.checkpoint} is the privileged-state baseline (object poses): it runs in "
                         "`lam-ros eval-sim` only, never through the camera pipeline")
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()] or list(policy.cameras)
    size = args.image_size or recorded_image_size(policy) or 128
    env = sim.make_env(robot=args.robot, task=args.task, cameras=tuple(cameras), image_size=size)
    box = ROBOTS[args.robot].default_workspace
    safety = SafetyLayer(SafetyConfig(
        workspace_min=args.workspace_min or box[0], workspace_max=args.workspace_max or box[1],
        max_step_translation_m=args.max_step_translation_m, max_step_rotation_rad=args.max_step_rotation_rad,
        stale_after_s=args.stale_after_s, dry_run=args.dry_run,
    ))
    lam = None
    if args.lam_checkpoint:
        from lam_ros.pipeline import load_latent_model

        lam = load_latent_model(args.lam_checkpoint, args.device)
    summary = run_sim(env, policy, safety, cameras, args.instruction, args.episodes, args.max_steps, args.seed,
                      latent_model=lam, frame_gap_s=args.frame_gap_s).to_dict()
    env.close()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    return 0
