"""Simulator throughput: physics steps/s, control steps/s with cameras, bare MuJoCo rendering, peak memory.

Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is
its own; env and bare measurements alternate ``--repeats`` times and the best
of each is kept. Configurations:

* ``physics``: raw ``mj_step`` on the composed scene (robot + task objects).
* ``env``: ``env.step`` control steps (validation, IK, 100 physics substeps,
  metrics, rendering) with 0, 1 or 3 cameras at each resolution.
* ``bare``: ``mujoco.Renderer.update_scene`` + ``render`` for the same
  cameras and resolution on the same model, nothing else: the floor the env
  is compared against (one "frame set" = one image per camera).

Usage (headless):
  MUJOCO_GL=egl python benchmarks/bench_sim.py --out docs/bench_sim.json
  MUJOCO_GL=egl python benchmarks/bench_sim.py --sizes 128x128 --steps 40   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMERA_SETS = {1: ("third_person",), 3: ("third_person", "side", "wrist")}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _actions(n: int):
    """A smooth, deterministic wandering of the tool around home (keeps IK busy, stays reachable)."""
    import numpy as np

    t = np.arange(n)
    out = np.zeros((n, 7))
    out[:, 0] = 0.015 * np.sin(t / 3.0)
    out[:, 1] = 0.015 * np.cos(t / 4.0)
    out[:, 2] = 0.01 * np.sin(t / 5.0)
    out[:, 5] = 0.05 * np.sin(t / 6.0)
    out[:, 6] = (t // 10) % 2
    return out


def run_one(kind: str, robot: str, task: str, cams: int, width: int, height: int, steps: int) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    sys.path.insert(0, str(REPO))
    import mujoco

    import sim

    cameras = CAMERA_SETS.get(cams, ())
    env = sim.make_env(robot, task, cameras=cameras if kind == "env" else (), image_size=(width, height))
    env.reset(seed=0)
    base = env.unwrapped
    result = {"kind": kind, "robot": robot, "task": task, "cameras": cams, "width": width, "height": height}
    if kind == "physics":
        n = steps * base.substeps
        start = time.perf_counter()
        mujoco.mj_step(base.model, base.data, nstep=n)
        result["physics_steps_per_s"] = n / (time.perf_counter() - start)
    elif kind == "env":
        actions = _actions(steps + 5)
        for a in actions[:5]:  # warm-up (first render allocates the GL context buffers)
            env.step(a)
        start = time.perf_counter()
        for a in actions[5:]:
            env.step(a)
        result["control_steps_per_s"] = steps / (time.perf_counter() - start)
    elif kind == "bare":
        from sim.cameras import model_camera_name

        renderer = mujoco.Renderer(base.model, height=height, width=width)
        ids = [base.model.camera(model_camera_name(c)).id for c in cameras]
        for cid in ids:  # warm-up
            renderer.update_scene(base.data, camera=cid)
            renderer.render()
        start = time.perf_counter()
        for _ in range(steps):
            for cid in ids:
                renderer.update_scene(base.data, camera=cid)
                renderer.render()
        result["frame_sets_per_s"] = steps / (time.perf_counter() - start)
        renderer.close()
    else:
        raise ValueError(f"unknown benchmark kind {kind!r}")
    result["peak_rss_mib"] = _peak_mib()
    env.close()
    return result


def _subprocess(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--one", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ})
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="widowx")
    parser.add_argument("--task", default="carrot_on_plate")
    parser.add_argument("--sizes", default="128x128,640x480", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--steps", type=int, default=60, help="control steps (or frame sets) per measurement")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternate env / bare measurements this many times and keep each one's best "
                             "(the machine may be shared; the best run is the least disturbed)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--one", nargs=7, metavar=("KIND", "ROBOT", "TASK", "CAMS", "W", "H", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        kind, robot, task, cams, w, h, steps = args.one
        print(json.dumps(run_one(kind, robot, task, int(cams), int(w), int(h), int(steps))))
        return 0

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    common = [args.robot, args.task]
    def best(rows_, key):
        return max(rows_, key=lambda r: r[key])

    rows = [best([_subprocess(["physics", *common, "0", "64", "64", str(args.steps)]) for _ in range(args.repeats)],
                 "physics_steps_per_s")]
    rows.append(best([_subprocess(["env", *common, "0", "64", "64", str(args.steps)]) for _ in range(args.repeats)],
                     "control_steps_per_s"))
    comparisons = []
    for w, h in sizes:
        for cams in (1, 3):
            env_rows, bare_rows = [], []
            for _ in range(args.repeats):
                env_rows.append(_subprocess(["env", *common, str(cams), str(w), str(h), str(args.steps)]))
                bare_rows.append(_subprocess(["bare", *common, str(cams), str(w), str(h), str(args.steps)]))
            env_row, bare_row = best(env_rows, "control_steps_per_s"), best(bare_rows, "frame_sets_per_s")
            rows += [env_row, bare_row]
            loss = 1.0 - env_row["control_steps_per_s"] / bare_row["frame_sets_per_s"]
            comparisons.append({"size": f"{w}x{h}", "cameras": cams,
                                "env_steps_per_s": env_row["control_steps_per_s"],
                                "bare_frame_sets_per_s": bare_row["frame_sets_per_s"],
                                "loss_vs_bare": loss, "env_peak_rss_mib": env_row["peak_rss_mib"]})
    report = {
        "command": "MUJOCO_GL=egl python benchmarks/bench_sim.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "mujoco_gl": os.environ.get("MUJOCO_GL", "")},
        "rows": rows,
        "comparisons": comparisons,
    }
    physics = rows[0]["physics_steps_per_s"]
    no_cam = rows[1]["control_steps_per_s"]
    print(f"physics: {physics:,.0f} steps/s ({physics / 100:,.0f} control periods/s); "
          f"env without cameras: {no_cam:,.1f} control steps/s (peak {rows[1]['peak_rss_mib']:.0f} MiB)")
    print("| size | cameras | env control steps/s | bare MuJoCo frame sets/s | env loss vs bare | env peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for c in comparisons:
        print(f"| {c['size']} | {c['cameras']} | {c['env_steps_per_s']:.1f} | {c['bare_frame_sets_per_s']:.1f} | "
              f"{c['loss_vs_bare']:.1%} | {c['env_peak_rss_mib']:.0f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
