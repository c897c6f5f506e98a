"""Record simulator episodes (scripted expert) into a crash-safe LeRobot v3.0 dataset.

One video feature per camera (observation.images.<camera>), observation.state
([x, y, z, roll, pitch, yaw, gripper]), action (the 7-D Bridge delta actually
executed after clamping), the task instruction, the robot type, plus the sync
audit features. Episodes are committed one by one: a killed run keeps every
finished episode (`lam-ros recover DIR`, or --resume to continue).

Example:
  lam-ros record-sim --robot widowx --task carrot_on_plate --episodes 50 \\
      --cameras third_person,side,wrist --image-size 128x128 --randomize-cameras -o data/widowx_carrot
"""

from __future__ import annotations

import argparse


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
    parser.add_argument("--vcodec", default="h264", help="video codec for lerobot (default h264)")
    parser.add_argument("--resume", action="store_true", help="append to an existing dataset (recovers it first)")


def run(args) -> int:
    from lam_ros.recording.sim import record_sim

    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    report = record_sim(args.output, robot=args.robot, task=args.task, episodes=args.episodes, cameras=cameras,
                        image_size=args.image_size, randomize_cameras=args.randomize_cameras, seed=args.seed,
                        max_steps=args.max_steps, only_success=args.only_success, resume=args.resume,
                        vcodec=args.vcodec)
    d = report.to_dict()
    print(f"wrote {d['episodes']} episode(s), {d['frames']} frames to {args.output}; "
          f"report: {args.output}/recording_report.md")
    return 0
