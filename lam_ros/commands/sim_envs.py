"""List the registered simulator environments (one per robot x task).

Each id works with gymnasium.make after `import sim`, e.g.
  gymnasium.make("lam_ros/WidowX-CarrotOnPlate-v0", cameras=("third_person", "wrist"), image_size=(128, 128))
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    import sim
    from sim.tasks import get_task

    rows = []
    for (robot, task), env_id in sim.ENV_IDS.items():
        spec = get_task(task)
        rows.append({"id": env_id, "robot": robot, "task": task, "instruction": spec.instruction,
                     "max_episode_steps": spec.max_episode_steps})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{width}}  {'robot':<7} {'steps':>5}  instruction")
    for r in rows:
        print(f"{r['id']:<{width}}  {r['robot']:<7} {r['max_episode_steps']:>5}  {r['instruction']}")
    print(f"cameras: {', '.join(sim.CAMERAS)}; control 5 Hz, physics 500 Hz")
    return 0
