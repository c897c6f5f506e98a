"""Train LeRobot's own ACT or Diffusion Policy on lam_ros LeRobot datasets (the
ladder's "what a LeRobot user would pick" rung), through lerobot's training pieces:
its policy config classes, make_policy, pre/post processors with the datasets'
statistics, its optimizer/scheduler presets and training step. Vision backbones
start from random weights (nothing is downloaded).

Several datasets (e.g. one per task) are trained together; their statistics are
merged with lerobot's aggregate_stats. The output is a standard LeRobot
pretrained-policy directory plus lam_ros_meta.json (robot, cameras, image size,
action convention), loadable with lam_ros.lerobot_policy.LeRobotPolicy.

Example:
  lam-ros train-lerobot --policy act --dataset data/carrot data/stack_cube --out runs/act \\
      --steps 2000 --batch-size 32 --cameras third_person,wrist --image-size 64x64
"""

from __future__ import annotations

import json

from lam_ros.cli import is_main_process


def _policy_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--policy-option must be KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return key.strip(), parsed


def configure(parser) -> None:
    parser.add_argument("--policy", required=True, choices=["act", "diffusion"], help="LeRobot policy type")
    parser.add_argument("--dataset", nargs="+", required=True, help="local LeRobot dataset directories (trained together)")
    parser.add_argument("--out", required=True, help="output LeRobot pretrained-policy directory")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation and sampling (default 0)")
    parser.add_argument("--cameras", help="comma-separated cameras (default: all the datasets share)")
    parser.add_argument("--image-size", help="N or WxH the policy sees (default: the recorded size)")
    parser.add_argument("--robot", help="robot stored with the policy (default: the datasets' robot_type)")
    parser.add_argument("--preset", default="small", choices=["small", "lerobot"],
                        help="'small': CPU-sized models (ACT d=256, chunk 10 with temporal ensembling; Diffusion "
                             "U-Net 64-128-256, DDIM 10 steps); 'lerobot': lerobot's own defaults (default small)")
    parser.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of lerobot's config class, value as JSON (repeatable), "
                             "e.g. chunk_size=20, n_action_steps=5, down_dims=[128,256,512]")
    parser.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers (default 0)")
    parser.add_argument("--log-every", type=int, default=50, help="log the loss every N steps")
    parser.add_argument("--overwrite", action="store_true", help="replace a policy already in --out")


def run(args) -> int:
    from training.train_lerobot import train_lerobot

    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()] if args.cameras else None
    options = dict(_policy_option(o) for o in args.policy_option)
    summary = train_lerobot(
        args.dataset,
        args.out,
        policy_type=args.policy,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        cameras=cameras,
        image_size=args.image_size,
        robot=args.robot,
        preset=args.preset,
        policy_options=options,
        lr=args.lr,
        device=args.device,
        num_workers=args.num_workers,
        log_every=args.log_every,
        overwrite=args.overwrite,
    )
    if is_main_process():
        print(json.dumps(summary, indent=1))
    return 0
