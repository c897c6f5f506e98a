"""Rendering cost of exogenous noise: env control steps/s with and without noise against bare rendering.

The simulator benchmark's bound (docs/sim.md, benchmarks/bench_sim.py) is that the env loses at most 25 %
against bare ``mujoco.Renderer`` rendering of the same cameras. Here three measurements alternate
``--repeats`` times in one process (so a busy machine slows all of them alike) and the best of each is kept:

* ``quiet``: ``env.step`` without noise; ``noisy``: with ``--noise`` (default: every knob on);
* ``bare``: ``update_scene`` + ``render`` of the same cameras on the noisy model, nothing else.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_sim_noise.py --sizes 64x64,128x128 --cameras 1,3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_sim import CAMERA_SETS, _actions  # noqa: E402

ALL_ON = "camera_motion=1,distractors=4,lighting=1,sensor_noise=1,occlusion=0.5"


def measure(env, steps: int) -> float:
    env.reset(seed=0)
    actions = _actions(steps + 3)
    for a in actions[:3]:
        env.step(a)
    start = time.perf_counter()
    for a in actions[3:]:
        env.step(a)
    return steps / (time.perf_counter() - start)


def measure_bare(env, steps: int) -> float:
    import mujoco

    from sim.cameras import model_camera_name

    base = env.unwrapped
    renderer = mujoco.Renderer(base.model, height=base.image_height, width=base.image_width)
    ids = [base.model.camera(model_camera_name(c)).id for c in base.cameras]
    for cid in ids:
        renderer.update_scene(base.data, camera=cid)
        renderer.render()
    start = time.perf_counter()
    for _ in range(steps):
        for cid in ids:
            renderer.update_scene(base.data, camera=cid)
            renderer.render()
    rate = steps / (time.perf_counter() - start)
    renderer.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", default=ALL_ON)
    parser.add_argument("--sizes", default="128x128")
    parser.add_argument("--cameras", default="1,3", help="camera counts (1: third_person, 3: + side, wrist)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import sim

    rows = []
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        for n in (int(c) for c in args.cameras.split(",")):
            quiet = sim.make_env("widowx", "carrot_on_plate", cameras=CAMERA_SETS[n], image_size=(w, h))
            noisy = sim.make_env("widowx", "carrot_on_plate", cameras=CAMERA_SETS[n], image_size=(w, h), noise=args.noise)
            best = {"quiet": 0.0, "noisy": 0.0, "bare": 0.0}
            for _ in range(args.repeats):
                best["quiet"] = max(best["quiet"], measure(quiet, args.steps))
                best["noisy"] = max(best["noisy"], measure(noisy, args.steps))
                best["bare"] = max(best["bare"], measure_bare(noisy, args.steps))
            quiet.close()
            noisy.close()
            row = {"size": size, "cameras": n, **{f"{k}_per_s": round(v, 1) for k, v in best.items()},
                   "noisy_loss_vs_bare": round(1 - best["noisy"] / best["bare"], 3),
                   "noisy_vs_quiet": round(best["noisy"] / best["quiet"], 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| size | cameras | env no noise (steps/s) | env with noise | bare render (frame sets/s) | "
          "noisy env loss vs bare | noisy / quiet |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['cameras']} | {r['quiet_per_s']} | {r['noisy_per_s']} | {r['bare_per_s']} | "
              f"{r['noisy_loss_vs_bare']:.1%} | {r['noisy_vs_quiet']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"noise": args.noise, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
