#!/usr/bin/env python
"""The policy diagnostic ladder: every rung on the same labelled episodes and the same
evaluation seeds, 3 training seeds per row, one table (docs/policy_ladder.md).

Rungs (issue: "learned policies that complete the tasks"):
  expert     the scripted expert (upper reference; no training)
  state      privileged state: object poses + EE state -> action chunk (MLP)
  act        LeRobot ACT, trained with `lam-ros train-lerobot` (random-init backbone)
  diffusion  LeRobot Diffusion Policy, same
  scratch    our VLA from scratch (same trained parameters as the latent rows)
  mvp        our VLA pretrained on MVP-LAM latent actions, then finetuned
  single     our VLA pretrained on single-view LAM latent actions, then finetuned
  mvp-effnet / single-effnet   the same with LAMs on the frozen ImageNet trunk's features instead of
             pixels (`train-lam --feature-source effnet`, docs/lam_experiment.md)

Data, training settings and the VLA recipe are the demo's (`lam_ros.commands.demo`),
so this ladder measures exactly what `bash scripts/demo.sh` ships. Everything lands
under --out and finished pieces are skipped on a re-run (resumable). Not a test:
it takes hours on a 2-core CPU.

  python benchmarks/policy_ladder.py --out outputs/ladder --seeds 0,1,2
  # the low-label regime: stage 2 on 50 labelled episodes per task, the LAM and stage 1 on every video
  python benchmarks/policy_ladder.py --out outputs/ladder_low --rows scratch,mvp --finetune-episodes 50
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lam_ros.commands import demo  # noqa: E402  (the recipe: one source of truth)

ROWS = ("expert", "state", "act", "diffusion", "scratch", "mvp", "single", "mvp-effnet", "single-effnet")
VLA_ROWS = ("scratch", "mvp", "single", "mvp-effnet", "single-effnet")
METRICS = ("success", "placed", "grasp", "moved_correct_object")
log = logging.getLogger("policy_ladder")


def lam_ros(*argv: str) -> None:
    cmd = [sys.executable, "-m", "lam_ros.cli", *argv]
    log.info("$ lam-ros %s", " ".join(argv))
    subprocess.run(cmd, check=True, cwd=ROOT)


def train_row(row: str, seed: int, args, out: Path, data: dict) -> Path | str:
    """Train one row for one seed (skipped when its checkpoint exists); returns what eval-sim takes."""
    if row == "expert":
        return "expert"
    ckpt = out / "runs" / f"{row}_seed{seed}"
    done = ckpt / ".done"
    if done.exists():
        return ckpt
    labelled = [str(p) for p in data["labelled"]]
    features = out / demo.FEATURE_CACHE  # the frozen trunk's features of the shared recordings, for every row and seed
    if row == "state":
        from training.train_state_policy import train_state_policy

        train_state_policy(labelled, ckpt, chunk_size=args.chunk_size, seed=seed, steps=args.state_steps)
    elif row in ("act", "diffusion"):
        lam_ros("train-lerobot", "--policy", row, "--dataset", *labelled, "--out", str(ckpt), "--steps",
                str(args.lerobot_steps), "--seed", str(seed), "--cameras", ",".join(demo.POLICY_CAMERAS),
                "--image-size", str(args.image_size), "--overwrite")
    elif row == "scratch":
        lam_ros(*demo.finetune_args(labelled, demo.BACKBONE, ckpt, args.finetune_steps, seed, args.robot, features,
                                    args.finetune_episodes))
    else:  # mvp / single [-effnet]: LAM on the play data -> stage 1 -> stage 2
        objective, _, source = row.partition("-")
        lam = out / "runs" / f"lam_{row}_seed{seed}"
        if not (lam / "checkpoint").exists():
            lam_ros(*demo.lam_args([str(p) for p in data["play"]], lam, objective, args.lam_steps, args.image_size, seed,
                                   feature_source=source or "patch", feature_cache=features if source else None))
        stage1 = out / "runs" / f"stage1_{row}_seed{seed}"
        if not (stage1 / ".done").exists():
            videos = [str(p) for p in data["play"] + data["labelled"]]
            lam_ros(*demo.pretrain_args(videos, lam / "checkpoint", stage1, args.pretrain_steps, seed, args.robot, features))
            (stage1 / ".done").touch()
        lam_ros(*demo.finetune_args(labelled, str(stage1), ckpt, args.finetune_steps, seed, args.robot, features,
                                    args.finetune_episodes))
    done.touch()
    return ckpt


def evaluate_row(row: str, seed: int, agent, args, out: Path) -> dict:
    from training.eval_sim import evaluate

    result_file = out / "eval" / f"{row}_seed{seed}" / "results.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    return evaluate({row: str(agent)}, result_file.parent, robot=args.robot, tasks=args.tasks,
                    episodes=args.eval_episodes, seed=demo.EVAL_SEED, video_episodes=1, layout=demo.LAYOUT,
                    executor=demo.EXECUTOR)


def summarise(results: dict, times: dict, args) -> str:
    lines = [
        "# Policy ladder",
        "",
        f"Same labelled episodes ({args.labelled_episodes} per task"
        + (f"; the VLA rows finetune on the first {args.finetune_episodes} of them, stage 1 sees every video"
           if args.finetune_episodes is not None else "")
        + f"), same {args.eval_episodes} evaluation seeds per task "
        f"(from {demo.EVAL_SEED}, {demo.LAYOUT} layout), training seeds {args.seeds}. Cells: mean ± sd over training seeds, in %; "
        "success at the final step / placed at some step / grasp / moved-correct-object.",
        "",
        "| rung | " + " | ".join(args.tasks) + " | average success | wall time per seed (train + eval) |",
        "|---|" + "---|" * (len(args.tasks) + 2),
    ]
    for row in args.rows:
        per_seed = results.get(row, {})
        if not per_seed:
            continue
        cells = []
        for task in args.tasks:
            stats = []
            for m in METRICS:
                vals = [100 * r["summary"][row][task].get(m, np.nan) for r in per_seed.values()]  # older runs: no "placed"
                stats.append(f"{np.mean(vals):.0f}±{np.std(vals):.0f}")
            cells.append(" / ".join(stats))
        avg = [100 * r["summary"][row]["average"]["success"] for r in per_seed.values()]
        wall = np.mean(list(times.get(row, {}).values())) if times.get(row) else float("nan")
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {np.mean(avg):.1f}±{np.std(avg):.1f} | {wall / 60:.1f} min |")
    lines += ["", "Command: `" + " ".join(["python", "benchmarks/policy_ladder.py", *sys.argv[1:]]) + "`", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/ladder"), help="work folder (default: %(default)s)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows of {', '.join(ROWS)}")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (default: %(default)s)")
    p.add_argument("--tasks", default="carrot_on_plate,stack_cube", help="tasks (default: %(default)s)")
    p.add_argument("--robot", default="widowx")
    p.add_argument("--labelled-episodes", type=int, default=demo.DEFAULTS["labelled_episodes"])
    p.add_argument("--play-episodes", type=int, default=demo.DEFAULTS["play_episodes"])
    p.add_argument("--action-noise", type=float, default=demo.DEFAULTS["action_noise"],
                   help="DART noise (m) of the labelled demos, as the demo records them (default: %(default)s)")
    p.add_argument("--eval-episodes", type=int, default=24)
    p.add_argument("--image-size", type=int, default=demo.DEFAULTS["image_size"])
    p.add_argument("--chunk-size", type=int, default=demo.CHUNK_SIZE)
    p.add_argument("--state-steps", type=int, default=10000,
                   help="privileged-state MLP training steps (3000 underfit: 27 %% vs 48 %% at 10000, docs/policy_ladder.md)")
    p.add_argument("--lerobot-steps", type=int, default=3000)
    p.add_argument("--lam-steps", type=int, default=demo.DEFAULTS["lam_steps"])
    p.add_argument("--pretrain-steps", type=int, default=demo.DEFAULTS["pretrain_steps"])
    p.add_argument("--finetune-steps", type=int, default=demo.DEFAULTS["finetune_steps"])
    p.add_argument("--finetune-episodes", type=int, metavar="N",
                   help="the low-label regime: the VLA rows finetune on only the first N labelled episodes per task, "
                        "while the LAM and stage 1 still see every video (default: all labelled episodes)")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "policy_ladder_results.md",
                   help="markdown table to write (default: %(default)s)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    if args.finetune_episodes is not None:
        if not 0 < args.finetune_episodes <= args.labelled_episodes:
            p.error(f"--finetune-episodes {args.finetune_episodes} must be in 1..--labelled-episodes ({args.labelled_episodes})")
        other = [r for r in args.rows if r not in VLA_ROWS and r != "expert"]
        if other:
            p.error(f"--finetune-episodes applies to the VLA rows ({', '.join(VLA_ROWS)}) only; rows {other} would "
                    "train on every labelled episode, which is not the comparison it asks for")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    out: Path = args.out
    data = demo.record_data(out / "data", args.tasks, args.robot, args.play_episodes, args.labelled_episodes,
                            args.image_size, action_noise=args.action_noise)
    results: dict = {}
    times: dict = {}
    timing_file = out / "timings.json"
    if timing_file.exists():
        times = json.loads(timing_file.read_text())
    for row in args.rows:
        for seed in ([0] if row == "expert" else args.seeds):
            started = time.monotonic()
            agent = train_row(row, seed, args, out, data)
            results.setdefault(row, {})[seed] = evaluate_row(row, seed, agent, args, out)
            times.setdefault(row, {}).setdefault(str(seed), time.monotonic() - started)
            timing_file.write_text(json.dumps(times, indent=1))
            args.doc.write_text(summarise(results, times, args))
    print(args.doc.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
