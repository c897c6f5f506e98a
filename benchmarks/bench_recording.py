"""Recording benchmark (not a test): sustained live recording and bag conversion.

  .venv/bin/python benchmarks/bench_recording.py live --cameras 3 --size 640x480 --fps 30 --seconds 10
  .venv/bin/python benchmarks/bench_recording.py bag --cameras 3 --size 640x480 --fps 30 --seconds 3

live: a publisher thread feeds N cameras in real time (with 3 ms jitter) plus
joint states and commands into ``LiveRecorder`` (streaming encoding, h264),
exactly as the recorder node's callbacks would. Reported: frames expected /
written, held and dropped frames, the writer backlog (frames waiting; it grows
when encoding cannot keep up), how long the backlog took to drain after the
episode, CPU use and peak memory.
bag: writes a synthetic rosbag2 (sqlite3) and times ``bags_to_lerobot``
(decode, sync, h264 encoding, commit): image messages per second.
Prints one JSON line per run; results go in docs/recording.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def images(n_cams, h, w, n_distinct=30):
    """Camera-like content (smooth gradients, a moving block, mild noise): random
    noise would be the worst case for any video codec and unlike a real scene."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for c in range(n_cams):
        frames = []
        for k in range(n_distinct):
            img = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 60 * c)], axis=2).astype(np.int16)
            x0 = (k * w // n_distinct) % (w - w // 5)
            img[h // 3: h // 3 + h // 5, x0: x0 + w // 5] = (200, 40, 40)
            img += rng.integers(-4, 5, img.shape, dtype=np.int16)
            frames.append(np.clip(img, 0, 255).astype(np.uint8))
        out.append(frames)
    return out


def bench_live(args, out: Path) -> dict:
    from lam_ros.recording.live import LiveRecorder

    w, h = map(int, args.size.split("x"))
    cams = [f"cam{i}" for i in range(args.cameras)]
    imgs = images(args.cameras, h, w)
    rec = LiveRecorder(out / "live", cams, fps=args.fps, task="bench", state_names=["a"], action_names=["b"],
                       timeout=2.0)
    rec.wait_ready()  # the node builds its recorder at start-up, long before the first episode
    rec.start_episode()
    n = int(args.seconds * args.fps)
    rng = np.random.default_rng(1)
    t_start, c_start = time.monotonic(), cpu_s()
    late = 0

    def publish():
        nonlocal late
        for k in range(n):
            target = t_start + k / args.fps
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0 / args.fps:
                late += 1
            t = 1000.0 + k / args.fps
            rec.add_state(t - 0.005, [k])
            for i, cam in enumerate(cams):
                rec.add_image(cam, t + rng.uniform(-0.003, 0.003), imgs[i][k % len(imgs[i])])
            rec.add_action(t + 0.01, [k])

    pub = threading.Thread(target=publish)
    pub.start()
    pub.join()
    t_fed = time.monotonic()
    backlog_at_end = rec.status()["backlog"]
    rec.stop_episode()
    t_saved = time.monotonic()
    status = rec.status()
    rec.close()
    report = json.loads((out / "live" / "recording_report.json").read_text())
    return {
        "mode": "live", "cameras": args.cameras, "size": args.size, "fps": args.fps, "seconds": args.seconds,
        "frames_expected": n, "frames_written": report["frames"], "held_frames": report["held_frames"],
        "dropped_frames": report["dropped_frames"], "publisher_late_ticks": late,
        "max_backlog_frames": status["max_backlog"], "backlog_at_end_frames": backlog_at_end,
        "drain_and_save_s": round(t_saved - t_fed, 2),
        "kept_up": backlog_at_end <= args.fps // 2 and late == 0,
        "cpu_percent_of_one_core": round(100 * (cpu_s() - c_start) / (t_saved - t_start), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def bench_bag(args, out: Path) -> dict:
    from _recording_helpers import write_bag

    from lam_ros.recording.bag import BagOptions, bags_to_lerobot

    w, h = map(int, args.size.split("x"))
    topics = [f"/cam{i}/image_raw" for i in range(args.cameras)]
    n = int(args.seconds * args.fps)
    t0 = time.monotonic()
    write_bag(out / "bag", cameras=topics, n=n, fps=args.fps, h=h, w=w, jitter=0.003)
    t_write = time.monotonic() - t0
    opts = BagOptions(cameras=topics, state_topic="/joint_states", action_topic="/cmd", fps=args.fps, task="bench")
    import lerobot.datasets.lerobot_dataset  # noqa: F401  (one-time import, not conversion work)

    t0, c0 = time.monotonic(), cpu_s()
    report = bags_to_lerobot([out / "bag"], out / "ds", opts, progress=False)
    dt = time.monotonic() - t0
    d = report.to_dict()
    return {
        "mode": "bag", "cameras": args.cameras, "size": args.size, "fps": args.fps, "frames": d["frames"],
        "image_messages": n * args.cameras, "convert_s": round(dt, 2),
        "image_messages_per_s": round(n * args.cameras / dt, 1), "frames_per_s": round(d["frames"] / dt, 1),
        "bag_write_s": round(t_write, 2), "cpu_percent_of_one_core": round(100 * (cpu_s() - c0) / dt, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["live", "bag"])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_recording_"))
    try:
        result = bench_live(args, out) if args.mode == "live" else bench_bag(args, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
