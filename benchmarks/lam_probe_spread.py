"""Linear-probe NMSE of LAM checkpoints over many random splits: how much the probe moves with the split alone.

The noise floor a single-view vs MVP comparison has to beat, per view and per action dimension. Splits are
by episode (``--by transition`` gives the old, optimistic per-transition split), the NMSE is normalised by
the test split's variance and near-constant action dims are excluded, as in ``eval-lam``.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lam_probe_spread.py single mvp mvp_ac --root outputs/lam_experiment_issue4
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIEWS = ("third_person", "side")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders under --root (e.g. single mvp mvp_ac)")
    parser.add_argument("--root", default="outputs/lam_experiment", help="experiment output folder")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--by", choices=["episode", "transition"], default="episode", help="how the probe splits")
    parser.add_argument("--out", default="outputs/probe_spread.json")
    args = parser.parse_args()

    from models.lam import load_lam
    from training import lam_metrics
    from training.eval_lam import encode_pairs
    from training.lam_data import load_episodes, split_episodes

    torch.set_num_threads(1)
    datasets = sorted(glob.glob(f"{args.root}/data/*"))
    if not datasets:
        raise SystemExit(f"no datasets under {args.root}/data: run benchmarks/lam_experiment.sh first")
    heldout = split_episodes(load_episodes(datasets, list(VIEWS), 64), 0.25)[1]
    results: dict[str, dict] = {}
    net = None
    for name in args.models:
        model = load_lam(f"{args.root}/{name}/checkpoint").eval()
        gap = model.cfg.frame_gap
        pairs = [(e, t) for e, ep in enumerate(heldout) for t in range(len(ep) - gap)]
        acts = np.stack([heldout[e].actions[t:t + gap] for e, t in pairs])
        excluded = lam_metrics.near_constant_dims(lam_metrics.raw_net_actions(acts))
        net = lam_metrics.net_actions(acts, exclude=excluded)
        groups = np.array([e for e, _ in pairs]) if args.by == "episode" else None
        for view in VIEWS:
            first = np.stack([heldout[e].frames[view][t] for e, t in pairs])
            later = np.stack([heldout[e].frames[view][t + gap] for e, t in pairs])
            z, _ = encode_pairs(model, first, later)
            runs = [lam_metrics.linear_probe_nmse(z, net, seed=s, groups=groups) for s in range(args.splits)]
            nmse = np.array([r["nmse"] for r in runs])
            per_dim = np.array([r["nmse_per_dim"] for r in runs])
            results[f"{name}/{view}"] = {"excluded_dims": excluded, "split_by": args.by,
                "nmse_mean": float(nmse.mean()), "nmse_sd": float(nmse.std()),
                "per_dim_mean": per_dim.mean(0).round(2).tolist(), "per_dim_sd": per_dim.std(0).round(2).tolist(),
            }
            print(f"{name} {view}: NMSE over {args.splits} splits {nmse.mean():.3f} +- {nmse.std():.3f}; "
                  f"per dim {per_dim.mean(0).round(2)} +- {per_dim.std(0).round(2)}", flush=True)
    if net is not None:
        kurtosis = ((net - net.mean(0)) ** 4).mean(0) / net.var(0) ** 2
        print("net-action kurtosis per dim (normal = 3):", kurtosis.round(1))
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
