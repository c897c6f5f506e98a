#!/usr/bin/env python
"""How precisely must a policy know where the objects are? The privileged-state rung of the policy
ladder, evaluated in closed loop with its object positions corrupted by known amounts of noise.

A camera policy has to find the objects in its frames; linear probes on the frozen vision trunk find
them to 1-2 cm (docs/policy_ladder.md, session 7). This benchmark answers whether that precision is
enough: it trains (or loads) the privileged-state MLP on the given labelled datasets, then evaluates it
on the usual seeds while adding Gaussian noise to every object's x and y before the policy sees them,
either fresh at every step ("step") or drawn once per episode and held ("episode", a fixed bias such as
a miscalibrated or mislocalised object). Simulator only; not a test.

  python benchmarks/state_policy_noise.py --dataset D/labelled_carrot_on_plate D/labelled_stack_cube \\
      --out outputs/state_noise --sigmas-cm 0,0.5,1,2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lam_ros.commands import demo  # noqa: E402  (evaluation seeds, layout, executor: the demo's)

log = logging.getLogger("state_policy_noise")


class NoisyObjects:
    """Wraps a state policy: every object's x, y in ``env_state`` gets N(0, sigma) noise (metres),
    per step or held for the episode (redrawn when the executor is reset)."""

    def __init__(self, policy, sigma_m: float, mode: str, seed: int):
        from models.state_policy import POSE_SIZE

        self.policy, self.sigma, self.mode, self.pose_size = policy, sigma_m, mode, POSE_SIZE
        self.rng = np.random.default_rng(seed)
        self.bias = None

    def __getattr__(self, name):  # everything else (executor settings, reset, metadata) is the policy's
        return getattr(self.policy, name)

    def _noise(self, n_objects: int) -> np.ndarray:
        if self.mode == "step" or self.bias is None or len(self.bias) != n_objects:
            draw = self.rng.normal(0.0, self.sigma, size=(n_objects, 2))
            if self.mode == "step":
                return draw
            self.bias = draw
        return self.bias

    def reset(self, *args, **kwargs):
        self.bias = None
        return self.policy.reset(*args, **kwargs)

    def act(self, images, instruction, state=None, env_state=None, **extra):
        if env_state is not None and self.sigma > 0:
            poses = np.array(env_state, dtype=np.float32).reshape(-1, self.pose_size)
            poses[:, :2] += self._noise(len(poses))
            env_state = poses.reshape(-1)
        return self.policy.act(images, instruction, state, env_state=env_state, **extra)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", nargs="+", required=True, help="labelled LeRobot datasets with observation.environment_state")
    p.add_argument("--out", type=Path, default=Path("outputs/state_noise"))
    p.add_argument("--sigmas-cm", default="0,0.5,1,2", help="noise levels, cm (default: %(default)s)")
    p.add_argument("--modes", default="step,episode", help="step and/or episode (default: %(default)s)")
    p.add_argument("--tasks", default="carrot_on_plate,stack_cube")
    p.add_argument("--episodes", type=int, default=24)
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--steps", type=int, default=10000, help="MLP training steps (default: %(default)s)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from lam_ros import policy as policy_module
    from models.state_policy import is_state_policy
    from training.eval_sim import evaluate
    from training.train_state_policy import train_state_policy

    sigmas = [float(s) for s in args.sigmas_cm.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in ("step", "episode")]:
        p.error(f"unknown noise modes {bad}; known: step, episode")
    tasks = [t.strip() for t in args.tasks.split(",")]
    ckpt = args.out / f"state_seed{args.seed}"
    if not is_state_policy(ckpt):
        train_state_policy(args.dataset, ckpt, chunk_size=demo.CHUNK_SIZE, seed=args.seed, steps=args.steps)
    real_load = policy_module.load_policy
    rows = []
    for mode in modes:
        for sigma in sigmas:
            if sigma == 0 and mode != modes[0]:
                continue  # no noise is one row
            name = "none" if sigma == 0 else f"{mode}_{sigma:g}cm"
            result_file = args.out / "eval" / name / "results.json"
            if not result_file.exists():  # evaluate() opens agents from paths: wrap what it loads
                policy_module.load_policy = lambda *a, _s=sigma, _m=mode, **k: NoisyObjects(real_load(*a, **k), _s / 100, _m, 0)
                try:
                    evaluate({name: str(ckpt)}, result_file.parent, tasks=tasks, episodes=args.episodes, seed=demo.EVAL_SEED,
                             layout=demo.LAYOUT, executor=demo.EXECUTOR, video_episodes=0)
                finally:
                    policy_module.load_policy = real_load
            summary = json.loads(result_file.read_text())["summary"][name]
            rows.append((mode if sigma else "-", sigma, summary))
    lines = ["| noise | sigma (cm, x and y) | " + " | ".join(tasks) + " | average |", "|---|---|" + "---|" * (len(tasks) + 1)]
    for mode, sigma, s in rows:
        cells = [f"{100 * s[t]['success']:.1f} ({100 * s[t].get('placed', np.nan):.1f}, {100 * s[t]['grasp']:.1f})" for t in tasks]
        lines.append(f"| {mode} | {sigma:g} | " + " | ".join(cells) + f" | {100 * s['average']['success']:.1f} |")
    table = "\n".join(lines)
    (args.out / "results.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
