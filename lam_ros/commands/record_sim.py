"""Record simulator episodes (scripted expert) into a crash-safe LeRobot v3.0 dataset.

One video feature per camera (observation.images.<camera>), observation.state
([x, y, z, roll, pitch, yaw, gripper]), action (the 7-D Bridge delta actually
executed after clamping), the task instruction, the robot type, plus the sync
audit features. Episodes are committed in batches of --commit-every (default 10;
a commit reopens the dataset, which costs more the larger it grows): a killed run
keeps every committed episode and loses at most the last batch, which a resumed
run records again (`lam-ros recover DIR`, or --resume to continue). Ctrl-C / SIGTERM commit every finished episode.

Example:
  lam-ros record-sim --robot widowx --task carrot_on_plate --episodes 50 \\
      --cameras third_person,side,wrist --image-size 128x128 --randomize-cameras -o data/widowx_carrot
"""

from __future__ import annotations

import argparse


def add_layout_arg(parser: argparse.ArgumentParser) -> None:
    """``--layout``, shared by record-sim and eval-sim (sim.tasks.LAYOUTS)."""
    from sim.tasks import LAYOUTS, SIMPLER_JITTER_XY, SIMPLER_JITTER_YAW

    parser.add_argument(
        "--layout", default="uniform", choices=LAYOUTS,
        help=f"object placement: uniform (anywhere in the reachable box, any source yaw) or simpler (SIMPLER's 24 "
             f"configurations: seed i picks configuration i mod 24, jittered by {SIMPLER_JITTER_XY * 100:g} cm and "
             f"{SIMPLER_JITTER_YAW:g} rad; default uniform)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="dataset folder (must not exist unless --resume)")
    parser.add_argument("--robot", default="widowx", help="widowx | piper")
    parser.add_argument("--task", default="carrot_on_plate",
                        help="carrot_on_plate | stack_cube | spoon_on_towel | eggplant_in_basket")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to record (default 10)")
    parser.add_argument("--cameras", default="third_person,side,wrist", help="comma-separated camera names")
    parser.add_argument("--image-size", default="128x128", help="WxH, 64x64 .. 640x480 (default 128x128)")
    parser.add_argument("--randomize-cameras", action="store_true", help="randomise camera poses per episode")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (episode i uses seed+i)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut episodes short (debugging)")
    parser.add_argument("--only-success", action="store_true", help="discard failed expert episodes")
    parser.add_argument("--stop-after-success", type=int, default=None, metavar="STEPS",
                        help="end each episode STEPS control steps after the task first succeeds, as a human "
                             "demonstrator would (default: record the full 60-step SIMPLER episode)")
    parser.add_argument("--action-noise", type=float, default=0.0, metavar="METRES",
                        help="DART: execute the expert's translation plus Gaussian noise of this std, store the clean "
                             "expert action (shows recoveries from drift; default 0 = off, e.g. 0.005)")
    from sim.noise import knob_help

    parser.add_argument("--noise", default="none",
                        help="exogenous noise, KNOB=VALUE,... e.g. camera_motion=0.5,distractors=2 (default none; stored "
                             "in meta/info.json under lam_ros.exogenous_noise). Knobs: " + knob_help())
    parser.add_argument("--camera-ood", action="store_true",
                        help="with --randomize-cameras: sample every camera offset between 1x and 2x the default range "
                             "(poses outside the training range, for out-of-distribution evaluation)")
    add_layout_arg(parser)
    parser.add_argument("--vcodec", default="h264", help="video codec for lerobot (default h264)")
    parser.add_argument("--resume", action="store_true", help="append to an existing dataset (recovers it first)")
    parser.add_argument("--commit-every", type=int, default=10, metavar="N",
                        help="commit the dataset every N finished episodes (default 10); a SIGKILL loses at most the "
                             "episodes since the last commit; 1 commits each episode (slower on large datasets)")


def run(args) -> int:
    from lam_ros.recording.sim import record_sim
    from sim.cameras import ood_ranges
    from sim.noise import ExogenousNoise

    noise = ExogenousNoise.parse(args.noise)
    if args.camera_ood and not args.randomize_cameras:
        raise ValueError("--camera-ood needs --randomize-cameras")

    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    report = record_sim(args.output, robot=args.robot, task=args.task, episodes=args.episodes, cameras=cameras,
                        image_size=args.image_size, randomize_cameras=args.randomize_cameras, seed=args.seed,
                        max_steps=args.max_steps, only_success=args.only_success, resume=args.resume,
                        vcodec=args.vcodec, stop_after_success=args.stop_after_success, noise=noise,
                        action_noise=args.action_noise, layout=args.layout, commit_every=args.commit_every,
                        camera_ranges=ood_ranges() if args.camera_ood else None)
    d = report.to_dict()
    print(f"wrote {d['episodes']} episode(s), {d['frames']} frames to {args.output}; "
          f"report: {args.output}/recording_report.md")
    return 0
