"""Does bf16 autocast change the demo's finetuning time and closed-loop success on the CPU? (docs/vla.md,
"bf16 on the CPU").

    .venv/bin/python benchmarks/finetune_precision.py --demo outputs/demo --out outputs/finetune_precision \
        --runs bf16:0,no:0,bf16:1,bf16:2,no:1,no:2

Needs a demo folder whose record, lam and pretrain stages have run (`lam-ros demo --stages
record,lam,pretrain`). Each run is `precision:seed`: the demo's latent-pretrained finetune (the demo's own
arguments, `lam_ros.commands.demo.finetune_args`) with `--mixed-precision precision` and that seed, then
`eval-sim` on the demo's held-out episodes. Runs one after another, one thread each; resumable (a finished
finetune or evaluation is skipped). Wall times go to OUT/timeline.txt, tables to OUT/eval_<run>/results.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from lam_ros.commands.demo import DEFAULTS, FEATURE_CACHE, eval_args, finetune_args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("outputs/demo"), help="demo folder with data/ and vla_pretrained/")
    ap.add_argument("--out", type=Path, default=Path("outputs/finetune_precision"))
    ap.add_argument("--runs", default="bf16:0,no:0", help="comma-separated precision:seed (precision: no | bf16)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--episodes", type=int, default=24, help="evaluation episodes per task")
    args = ap.parse_args()
    labelled = sorted(str(p) for p in (args.demo / "data").glob("labelled_*"))
    if not labelled or not (args.demo / "vla_pretrained").exists():
        raise SystemExit(f"{args.demo}: no labelled datasets or no vla_pretrained/; run `lam-ros demo --stages "
                         "record,lam,pretrain` first")
    tasks = [p.split("labelled_", 1)[1] for p in labelled]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    lam_ros = [str(Path(sys.executable).with_name("lam-ros"))]
    args.out.mkdir(parents=True, exist_ok=True)
    for run in args.runs.split(","):
        precision, seed = run.split(":")
        name = f"{precision}_s{seed}"
        ckpt, evaluation = args.out / name, args.out / f"eval_{name}"
        started = time.monotonic()
        if not (ckpt / "model.safetensors").exists():
            argv = finetune_args(labelled, str(args.demo / "vla_pretrained"), ckpt, args.steps, int(seed), "widowx",
                                 args.demo / FEATURE_CACHE)
            with open(args.out / f"{name}.log", "w") as log:
                subprocess.run([*lam_ros, *argv, "--mixed-precision", precision], check=True, stdout=log,
                               stderr=subprocess.STDOUT, env=env)
        trained = time.monotonic()
        if not (evaluation / "results.json").exists():
            argv = ["eval-sim", "--checkpoint", str(ckpt), "--name", name, "--no-expert",
                    *eval_args(tasks, "widowx", args.episodes, DEFAULTS["image_size"]), "--out", str(evaluation)]
            with open(args.out / f"eval_{name}.log", "w") as log:
                subprocess.run([*lam_ros, *argv], check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        line = (f"{time.strftime('%H:%M:%S')} {name}: finetune {trained - started:.0f} s, "
                f"eval {time.monotonic() - trained:.0f} s")
        print(line, flush=True)
        with open(args.out / "timeline.txt", "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
