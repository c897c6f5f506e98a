"""Ladder rung 3: LeRobot's own ACT and Diffusion Policy on our tasks, closed loop.

For each policy: train it with ``training.train_lerobot.train_lerobot`` (the code
behind ``lam-ros train-lerobot``) on all the given datasets together (one per task),
load the result with ``lam_ros.lerobot_policy.LeRobotPolicy`` and run the SIMPLER
protocol with ``training.eval_sim.rollout`` (seeded episodes per task, success at
the final step, grasp / moved-correct-object at any step). The policy gets the
rendered camera images (resized by the runtime to its training size) and the
state vector ``env.unwrapped.state_vector(obs)``; its action is the Bridge delta
``env.step`` executes. Writes ``results.json`` and ``results.md`` into --out.

Use --threads 1 on a shared machine. Example (the run in docs/lerobot_policies.md):

    .venv/bin/python benchmarks/bench_lerobot_policies.py --data /tmp/lr_data/carrot /tmp/lr_data/stack \\
        --policies act,diffusion --steps act=400,diffusion=300 --batch-size 16 --episodes 24 --out /tmp/lr_bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TASK_OF_DATASET = {"carrot": "carrot_on_plate", "stack": "stack_cube", "spoon": "spoon_on_towel", "eggplant": "eggplant_in_basket"}


def _default_data() -> list[str]:
    demo = sorted(Path("outputs/demo/data").glob("labelled_*"))
    if demo:
        return [str(p) for p in demo]
    return [p for p in ("/tmp/lr_data/carrot", "/tmp/lr_data/stack") if Path(p).exists()]


def _per_policy(text: str, cast=int) -> dict:
    """'act=400,diffusion=300' or '400' (all) -> {name: value} ('*' for all)."""
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        out[name.strip() if sep else "*"] = cast(value if sep else name)
    return out


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def evaluate(policy, tasks: list[str], episodes: int, seed: int, robot: str, render_size, video_dir: Path | None) -> dict:
    import sim
    from training.eval_sim import METRICS, policy_act, rollout, write_video

    per_task, latencies = {}, []
    for task in tasks:
        env = sim.make_env(robot=robot, task=task, cameras=tuple(policy.cameras), image_size=render_size)
        policy_step = policy_act(env, policy, env.unwrapped.instruction)  # what eval-sim feeds a policy

        def act(obs, policy_step=policy_step):
            t = time.perf_counter()
            action = policy_step(obs)
            latencies.append(time.perf_counter() - t)
            return action

        records = []
        t0 = time.perf_counter()
        for i in range(episodes):
            policy.reset()
            rec = rollout(env, act, seed + i, record=video_dir is not None and i == 0)
            if "frames" in rec:
                video_dir.mkdir(parents=True, exist_ok=True)
                rec["video"] = str(write_video(rec.pop("frames"), video_dir / f"{task}_seed{seed + i}.mp4"))
            records.append(rec)
        env.close()
        summary = {m: float(np.mean([r[m] for r in records])) for m in METRICS}
        summary["eval_s"] = round(time.perf_counter() - t0, 1)
        per_task[task] = {"summary": summary, "episodes": records}
        print(f"  {task}: success {summary['success']:.2f} grasp {summary['grasp']:.2f} ({summary['eval_s']} s)", flush=True)
    lat = np.asarray(latencies) * 1e3
    return {"tasks": per_task, "act_ms_p50": round(float(np.percentile(lat, 50)), 2),
            "act_ms_p99": round(float(np.percentile(lat, 99)), 2)}


def open_loop(policy, data: list[str], frames: int, seed: int = 0) -> dict:
    """The runtime path on recorded frames: ``LeRobotPolicy.step``'s first action vs the
    recorded label, per dimension (mean absolute error), beside always predicting zero
    motion with the gripper's median; plus the share of recorded frames that are no-ops
    (no arm motion, gripper unchanged)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from training.vla_data import noop_frames

    rng = np.random.default_rng(seed)
    errors, zero_errors, noops, total = [], [], 0, 0
    for root in data:
        ds = LeRobotDataset(Path(root).name, root=root, video_backend="pyav")
        actions = np.stack([np.asarray(a, np.float32) for a in ds.hf_dataset["action"]])
        episodes = np.asarray([int(e) for e in ds.hf_dataset["episode_index"]])
        noops += int(noop_frames(actions, episodes).sum())
        total += len(actions)
        grip_median = float(np.median(actions[:, -1]))
        for i in rng.choice(len(ds), size=min(frames, len(ds)), replace=False):
            item = ds[int(i)]
            images = {c: (item[f"observation.images.{c}"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                      for c in policy.cameras}
            policy.reset()
            pred = policy.step(images, item["task"], item["observation.state"].numpy())[0]
            label = item["action"].numpy()
            errors.append(np.abs(pred - label))
            zero_errors.append(np.abs(np.r_[np.zeros(len(label) - 1), grip_median] - label))
    policy.reset()
    return {"frames": len(errors), "mae": np.mean(errors, 0).round(5).tolist(),
            "mae_zero_motion": np.mean(zero_errors, 0).round(5).tolist(), "noop_fraction": round(noops / total, 3)}


def markdown(results: dict) -> str:
    tasks = results["tasks"]
    lines = [
        f"{results['episodes']} episodes per task (seeds {results['eval_seed']}..{results['eval_seed'] + results['episodes'] - 1}), "
        f"robot {results['robot']}. Success % (grasp %, moved-correct-object %).",
        "",
        "| policy | steps x batch | train wall s (CPU s) | " + " | ".join(tasks) + " | average | eval wall s | act p50/p99 ms |",
        "|---|---|---|" + "---|" * (len(tasks) + 1) + "---|---|",
    ]
    for name, r in results["policies"].items():
        if "eval" not in r:
            continue
        tr, ev = r["train"], r["eval"]
        cells = []
        for t in tasks:
            s = ev["tasks"][t]["summary"]
            cells.append(f"{100 * s['success']:.1f} ({100 * s['grasp']:.1f}, {100 * s['moved_correct_object']:.1f})")
        avg = np.mean([ev["tasks"][t]["summary"]["success"] for t in tasks])
        avg_g = np.mean([ev["tasks"][t]["summary"]["grasp"] for t in tasks])
        eval_s = sum(ev["tasks"][t]["summary"]["eval_s"] for t in tasks)
        lines.append(f"| {name} | {tr.get('steps')} x {tr.get('batch_size')} | {tr.get('train_s')} ({tr.get('train_cpu_s', '-')}) | "
                     + " | ".join(cells) + f" | {100 * avg:.1f} ({100 * avg_g:.1f}) | {eval_s:.0f} | "
                     f"{ev['act_ms_p50']}/{ev['act_ms_p99']} |")
    for name, ol in (results.get("open_loop") or {}).items():
        lines += ["", f"Open loop, {name}: mean absolute error of the first predicted action on {ol['frames']} recorded frames "
                  f"(no-op share of the recorded frames {100 * ol['noop_fraction']:.0f}%):", "",
                  "| predictor | " + " | ".join(f"a{i}" for i in range(len(ol["mae"]))) + " |",
                  "|---|" + "---|" * len(ol["mae"]),
                  f"| {name} | " + " | ".join(f"{v:.4f}" for v in ol["mae"]) + " |",
                  "| zero motion, median gripper | " + " | ".join(f"{v:.4f}" for v in ol["mae_zero_motion"]) + " |"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=None,
                        help="LeRobot datasets, one per task (default: outputs/demo/data/labelled_*, else /tmp/lr_data/{carrot,stack})")
    parser.add_argument("--tasks", help="comma-separated tasks to evaluate (default: inferred from the dataset names)")
    parser.add_argument("--policies", default="act,diffusion")
    parser.add_argument("--steps", default="act=400,diffusion=300", help="training steps, 'N' or 'act=N,diffusion=M'")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--cameras", default="third_person,wrist")
    parser.add_argument("--image-size", default=None, help="training image size (default: the recorded size)")
    parser.add_argument("--render-size", default=None, help="WxH the simulator renders at eval (default: the training size; "
                                                            "the runtime resizes anything else)")
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--eval-seed", type=int, default=0, help="seed of the first evaluation episode")
    parser.add_argument("--robot", default="widowx")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    parser.add_argument("--reuse", action="store_true", help="evaluate an already trained policy in --out/<policy> instead of training")
    parser.add_argument("--videos", action="store_true", help="write one rollout video per task")
    parser.add_argument("--open-loop", type=int, default=0, metavar="N",
                        help="also compare the runtime's predictions with the labels of N random recorded frames per dataset")
    parser.add_argument("--no-eval", action="store_true", help="skip the closed-loop evaluation")
    parser.add_argument("--out", default="outputs/bench_lerobot", help="output folder")
    args = parser.parse_args(argv)

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from lam_ros.lerobot_policy import LeRobotPolicy
    from training.train_lerobot import parse_image_size, train_lerobot

    data = args.data or _default_data()
    if not data:
        parser.error("no datasets: pass --data (record them with `lam-ros record-sim ... --only-success`)")
    if args.tasks:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    else:
        tasks = []
        for d in data:
            name = Path(d).name.lower()
            task = next((t for k, t in TASK_OF_DATASET.items() if k in name), None)
            if task is None:
                parser.error(f"cannot tell the task of dataset {d}; pass --tasks")
            tasks.append(task)
    steps = _per_policy(args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"data": data, "tasks": tasks, "episodes": args.episodes, "eval_seed": args.eval_seed, "robot": args.robot,
               "threads": args.threads, "argv": sys.argv[1:], "policies": {}}
    for name in [p.strip() for p in args.policies.split(",") if p.strip()]:
        ckpt = out / name
        if args.reuse and (ckpt / "config.json").exists():
            train = json.loads((ckpt / "train_summary.json").read_text()) if (ckpt / "train_summary.json").exists() else {}
        else:
            n_steps = steps.get(name, steps.get("*"))
            if n_steps is None:
                parser.error(f"--steps names no step count for {name}")
            print(f"training {name}: {n_steps} steps x {args.batch_size}", flush=True)
            cpu0 = _cpu_seconds()
            train = train_lerobot(data, ckpt, policy_type=name, steps=n_steps, batch_size=args.batch_size, seed=args.seed,
                                  cameras=args.cameras.split(","), image_size=args.image_size, overwrite=True)
            train["train_cpu_s"] = round(_cpu_seconds() - cpu0, 1)
            (ckpt / "train_summary.json").write_text(json.dumps(train, indent=1))
        policy = LeRobotPolicy.load(ckpt, robot=args.robot, action_dim=7, cameras=args.cameras.split(","))
        if args.open_loop:
            results.setdefault("open_loop", {})[name] = ol = open_loop(policy, data, args.open_loop)
            print(f"  open loop {name}: {json.dumps(ol)}", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))
        if args.no_eval:
            continue
        h, w = policy.image_size
        render = args.render_size or f"{w}x{h}"
        if isinstance(render, str) and "x" not in render:
            render = f"{render}x{render}"
        rh, rw = parse_image_size(render)
        print(f"evaluating {name} ({args.episodes} episodes per task, renders {rw}x{rh})", flush=True)
        cpu0 = _cpu_seconds()
        ev = evaluate(policy, tasks, args.episodes, args.eval_seed, args.robot, (rw, rh),
                      out / "videos" / name if args.videos else None)
        ev["eval_cpu_s"] = round(_cpu_seconds() - cpu0, 1)
        results["policies"][name] = {"train": train, "eval": ev}
        (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
