"""The main job on a fresh machine: the whole lam_ros pipeline on the CPU, offline.

Stages (each writes under OUT/ and is skipped when its output is already there,
so an interrupted demo resumes; --force redoes everything):

  record    scripted multi-view demonstrations in the simulator (camera poses
            randomised per episode): an action-free "play" set per task and a
            small action-labelled set per task, on different seeds
  lam       train MVP-LAM (cross-view reconstruction) on the play set
  pretrain  VLA stage 1: predict the LAM's latent codes (no actions used)
  finetune  VLA stage 2: LoRA + action decoder on the small labelled set, from
            the stage-1 checkpoint AND from scratch (the baseline), same budget
  eval      closed-loop SIMPLER-protocol rollouts on held-out seeds: the
            latent-pretrained policy, the from-scratch baseline and the scripted
            expert; success / grasp table (JSON + markdown) and videos

The defaults are sized to finish in about half an hour on a 2-core CPU; they
are far too small for good policies: see docs/demo.md for measured results.
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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--robot", default="widowx", help="widowx | piper (default: %(default)s)")
    parser.add_argument("--tasks", default="carrot_on_plate,stack_cube",
                        help="comma-separated tasks, or 'all' (default: %(default)s)")
    parser.add_argument("--play-episodes", type=int, default=10,
                        help="action-free demonstrations per task for the LAM and stage 1 (default: %(default)s)")
    parser.add_argument("--labelled-episodes", type=int, default=4,
                        help="action-labelled demonstrations per task for stage 2 (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=6, help="closed-loop episodes per task and agent (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64, help="square camera resolution (default: %(default)s)")
    parser.add_argument("--lam-steps", type=int, default=300, help="LAM training steps (default: %(default)s)")
    parser.add_argument("--pretrain-steps", type=int, default=300, help="VLA stage-1 steps (default: %(default)s)")
    parser.add_argument("--finetune-steps", type=int, default=300, help="VLA stage-2 steps, each policy (default: %(default)s)")
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
    size = f"{args.image_size}x{args.image_size}"
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
        for task, p_dir, l_dir in zip(tasks, play, labelled):
            for root, episodes, seed in ((p_dir, args.play_episodes, PLAY_SEED), (l_dir, args.labelled_episodes, LABELLED_SEED)):
                _run_subcommand("record-sim", [
                    "--robot", args.robot, "--task", task, "--episodes", str(episodes),
                    "--cameras", "third_person,side,wrist", "--image-size", size, "--randomize-cameras",
                    "--seed", str(seed), "--only-success", "--output", str(root)])

    def lam() -> None:
        _run_subcommand("train-lam", [
            "--dataset", ",".join(map(str, play)), "--views", "third_person,side", "--objective", "mvp",
            "--frame-gap", "0.6s", "--output", str(lam_dir), "--steps", str(args.lam_steps),
            "--image-size", str(args.image_size), "--threads", str(args.threads)])

    def pretrain() -> None:
        _run_subcommand("pretrain-vla", [
            "--dataset", *map(str, play), "--out", str(pre_dir), "--lam", str(lam_dir / "checkpoint"),
            "--backbone", "tiny", "--cameras", "third_person", "--robot", args.robot,
            "--steps", str(args.pretrain_steps)])

    def finetune() -> None:
        common = ["--dataset", *map(str, labelled), "--steps", str(args.finetune_steps), "--robot", args.robot]
        _run_subcommand("finetune-vla", [*common, "--init", str(pre_dir), "--out", str(ft_dir)])
        _run_subcommand("finetune-vla", [*common, "--init", "tiny", "--cameras", "third_person", "--out", str(scratch_dir)])

    def evaluate() -> None:
        _run_subcommand("eval-sim", [
            "--checkpoint", str(ft_dir), "--baseline", f"scratch={scratch_dir}", "--robot", args.robot,
            "--tasks", ",".join(tasks), "--episodes", str(args.eval_episodes), "--seed", str(EVAL_SEED),
            "--image-size", str(args.image_size), "--out", str(eval_dir)])

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
        print("\nClosed-loop results (policy = latent-pretrained + LoRA finetuned; scratch = same finetuning, no stage 1):\n")
        print(table.read_text())
    print(f"demo: finished in {total:.0f} s (stages: {timings}); everything is under {out}")
    return 0
