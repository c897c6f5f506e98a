"""Convert ROS 2 bags (sqlite3 or mcap; no ROS install needed) into a LeRobot v3.0 dataset.

Each bag (a rosbag2 folder) is one episode; a folder of bags gives one episode
per bag. Cameras are approximately time-synchronised (message_filters
semantics: --queue-size, --slop) and resampled to --fps. Images: sensor_msgs/Image
(rgb8, bgr8, rgba8, bgra8, mono8) and CompressedImage (jpeg, png); depth is
refused. The action of frame k is the last command on --action-topic in
(t_k, t_k + 1/fps] (record the clamped command actually sent to the robot);
without --action-topic it is the next frame's state.

Every episode is committed on its own: an interrupted conversion keeps the
finished episodes (`lam-ros recover DIR`, or --resume to continue).

Example:
  lam-ros bag2lerobot bags/ --cameras /cam_a/image_raw,/cam_b/image_raw \\
      --state-topic /joint_states --action-topic /cmd --fps 10 --task "put carrot on plate" -o data/carrot
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", help="rosbag2 folders, or folders holding several")
    parser.add_argument("-o", "--output", required=True, help="dataset folder to write (must not exist unless --resume)")
    parser.add_argument("--cameras", required=True, help="comma-separated image topics, one video feature each")
    parser.add_argument("--camera-names", default="", help="comma-separated feature names (default: from the topics)")
    parser.add_argument("--state-topic", required=True, help="JointState / Float64MultiArray topic for observation.state")
    parser.add_argument("--action-topic", default=None, help="topic of the command actually sent (after clamping)")
    parser.add_argument("--fps", type=int, required=True, help="dataset frame rate")
    parser.add_argument("--task", required=True, help="task string stored with every frame")
    parser.add_argument("--robot-type", default=None, help="robot type stored in meta/info.json (e.g. widowx, piper)")
    parser.add_argument("--repo-id", default=None, help="dataset repo id (default local/<folder name>)")
    parser.add_argument("--queue-size", type=int, default=10, help="synchroniser queue size per camera (default 10)")
    parser.add_argument("--slop", type=float, default=0.02, help="max stamp spread in a matched set, seconds (default 0.02)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds without a synchronised set before it is an error")
    parser.add_argument("--bad-images", choices=["error", "skip"], default="error",
                        help="a corrupt image: stop with an error (default) or skip it and count it in the report")
    parser.add_argument("--vcodec", default="h264", help="video codec for lerobot (default h264; libsvtav1 is smaller but slower)")
    parser.add_argument("--no-streaming-encoding", action="store_true",
                        help="write PNGs and encode at episode end (lerobot's default path) instead of streaming")
    parser.add_argument("--resume", action="store_true", help="append to an existing dataset (recovers it first)")


def run(args) -> int:
    from lam_ros.recording.bag import BagOptions, bags_to_lerobot

    cameras = [t.strip() for t in args.cameras.split(",") if t.strip()]
    names = [n.strip() for n in args.camera_names.split(",") if n.strip()]
    if names and len(names) != len(cameras):
        raise ValueError(f"--camera-names has {len(names)} names for {len(cameras)} --cameras topics")
    opts = BagOptions(cameras=cameras, state_topic=args.state_topic, action_topic=args.action_topic, fps=args.fps,
                      task=args.task, queue_size=args.queue_size, slop=args.slop, timeout=args.timeout,
                      bad_images=args.bad_images, camera_names=names)
    report = bags_to_lerobot(args.bags, args.output, opts, robot_type=args.robot_type, resume=args.resume,
                             vcodec=args.vcodec, streaming_encoding=not args.no_streaming_encoding)
    d = report.to_dict()
    print(f"wrote {d['episodes']} episode(s), {d['frames']} frames to {args.output}; "
          f"dropped per camera {d['dropped_frames']}; max skew {d['max_skew_s'] * 1000:.1f} ms; "
          f"report: {args.output}/recording_report.md")
    return 0
