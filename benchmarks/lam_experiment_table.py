"""Tables of benchmarks/lam_experiment.sh: every cell's eval.json -> $OUT/results.md and results.json.

Layout read: ``$OUT/runs/<condition>/<n>v/<objective>/s<seed>/{eval,eval_ood_cams,eval_ood_noise}/eval.json``.
Each model's value of a metric is its mean over the evaluation seeds; a table cell is the mean over training
seeds ± the 95 % confidence half-width (Student t over training seeds); "eval sd" is the mean over models of
the spread over evaluation seeds. The difference tables pair models by training seed (same data, same seed); the
pooled tables pair them by condition and training seed across every condition present, with the number of pairs
that differ in the direction the paper predicts and a two-sided one-sample t-test on the paired differences.

    .venv/bin/python benchmarks/lam_experiment_table.py outputs/lam_experiment
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.lam_metrics import aggregate  # noqa: E402

MAIN = [("KSG", "ksg_bits"), ("KSG shuf", "ksg_shuffled_bits"), ("BA", "ba_bits"), ("BA shuf", "ba_shuffled_bits"),
        ("MINE", "mine_bits"), ("MINE shuf", "mine_shuffled_bits"), ("probe NMSE", "probe_nmse"),
        ("NMSE shuf", "probe_shuffled_nmse"), ("view acc", "view_probe_acc"), ("view shuf", "view_probe_shuffled_acc"),
        ("chance", "view_probe_chance"), ("additivity", "additivity_residual"), ("identity", "identity"),
        ("r(|z|,|ds|)", "norm_state_r")]
DIFF = [("KSG", "ksg_bits"), ("BA", "ba_bits"), ("MINE", "mine_bits"), ("probe NMSE", "probe_nmse"),
        ("view acc", "view_probe_acc")]
EVALS = {"eval": "held-out episodes, same noise as training", "eval_ood_cams": "OOD: camera poses outside the training range",
         "eval_ood_noise": "OOD: noise levels not seen in training"}
CONDITION_ORDER = ["none", "camera", "distractors", "both"]
# (model, baseline) pairs of the pooled tables; metrics where the paper predicts a lower value for the model
POOLED = [("mvp", "single"), ("mvp_ac", "single"), ("mvp_ac", "mvp")]
LOWER_IS_PREDICTED = {"probe_nmse", "view_probe_acc"}


def cell(stat: dict) -> str:
    if stat["n"] == 0:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.3f} ± {stat['ci95']:.3f}"
    return f"{stat['mean']:.3f}"


def load(out: Path) -> dict:
    """(condition, views, objective) -> eval kind -> seed -> summary."""
    runs: dict = defaultdict(lambda: defaultdict(dict))
    for path in sorted((out / "runs").glob("*/*v/*/s*/*/eval.json")):
        seed_dir = path.parent.parent
        kind = path.parent.name
        obj_dir, views_dir, cond_dir = seed_dir.parent, seed_dir.parent.parent, seed_dir.parent.parent.parent
        rep = json.loads(path.read_text())
        runs[(cond_dir.name, views_dir.name, obj_dir.name)][kind][seed_dir.name] = rep
    return runs


def condition_rank(cond: str) -> int:
    return CONDITION_ORDER.index(cond) if cond in CONDITION_ORDER else len(CONDITION_ORDER)


def order(key):
    cond, views, obj = key
    return (condition_rank(cond), views, ["single", "mvp", "mvp_ac"].index(obj)
            if obj in ("single", "mvp", "mvp_ac") else 9, obj)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--record-seconds", type=int, default=None)
    parser.add_argument("--total-seconds", type=int, default=None)
    args = parser.parse_args()
    runs = load(args.out)
    if not runs:
        raise SystemExit(f"no eval.json under {args.out}/runs")
    md, res = [], {"record_s": args.record_seconds, "total_s": args.total_seconds, "cells": {}}
    if args.total_seconds is not None:
        md += [f"Wall time: recording {args.record_seconds} s, total {args.total_seconds} s.", ""]
    any_rep = next(rep for kinds in runs.values() for reps in kinds.values() for rep in reps.values())
    md += [f"Action dims measured: {', '.join(any_rep['action_dims'])}; excluded as near-constant: "
           + (", ".join(d["name"] for d in any_rep["excluded_action_dims"]) or "none")
           + f". Evaluation seeds per model: {len(any_rep['eval_seeds'])}; probes split by {any_rep['probe_split']}.", ""]
    for kind, title in EVALS.items():
        cols = [(c, k) for c, k in MAIN if any(k in rep["summary"] for key in runs for rep in runs[key].get(kind, {}).values())]
        if not cols:
            continue
        md += [f"### {title}", "", "cells: mean over training seeds ± 95 % CI (t); eval sd: mean spread over evaluation seeds "
               "of the probe NMSE / KSG", "",
               "| condition | views | model | seeds | " + " | ".join(c for c, _ in cols) + " | eval sd NMSE | eval sd KSG |",
               "|---|---|---|---|" + "---|" * (len(cols) + 2)]
        for key in sorted(runs, key=order):
            reps = runs[key].get(kind, {})
            if not reps:
                continue
            stats = {k: aggregate([r["summary"][k]["mean"] for r in reps.values() if k in r["summary"]]) for _, k in cols}
            sd = {k: float(np.mean([r["summary"][k]["sd"] for r in reps.values()])) for k in ("probe_nmse", "ksg_bits")}
            res["cells"].setdefault("/".join(key), {})[kind] = {"seeds": sorted(reps), "stats": stats, "eval_sd": sd}
            md.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(reps)} | " + " | ".join(cell(stats[k]) for _, k in cols)
                      + f" | {sd['probe_nmse']:.3f} | {sd['ksg_bits']:.3f} |")
        md.append("")
        # paired differences against the single-view LAM
        lines = []
        for key in sorted(runs, key=order):
            cond, views, obj = key
            base = runs.get((cond, views, "single"), {}).get(kind, {})
            reps = runs[key].get(kind, {})
            if obj == "single" or not base or not reps:
                continue
            seeds = sorted(set(base) & set(reps))
            diffs = {k: aggregate(paired_differences(reps, base, k)) for _, k in DIFF}
            res["cells"]["/".join(key)].setdefault(kind, {})["minus_single"] = diffs
            lines.append(f"| {cond} | {views} | {obj} - single | {len(seeds)} | "
                         + " | ".join(cell(diffs[k]) for _, k in DIFF) + " |")
        if lines:
            md += [f"Paired difference to the single-view LAM ({title}; the paper predicts KSG / BA / MINE > 0, "
                   "probe NMSE < 0, view acc < 0, growing with noise):", "",
                   "| condition | views | comparison | seeds | " + " | ".join(c for c, _ in DIFF) + " |",
                   "|---|---|---|---|" + "---|" * len(DIFF), *lines, ""]
    md += pooled_tables(runs, res)
    (args.out / "results.md").write_text("\n".join(md) + "\n")
    (args.out / "results.json").write_text(json.dumps(res, indent=1))
    print("\n".join(md))
    return 0


def paired_differences(model: dict, baseline: dict, metric: str) -> list[float]:
    """``metric`` of each model minus its baseline, paired by training seed (seed -> eval report, both sides)."""
    return [model[s]["summary"][metric]["mean"] - baseline[s]["summary"][metric]["mean"]
            for s in sorted(set(model) & set(baseline))
            if metric in model[s]["summary"] and metric in baseline[s]["summary"]]


def p_text(p: float) -> str:
    return "p n/a" if not np.isfinite(p) else "p < 0.001" if p < 0.001 else f"p {p:.3f}"


def pooled_tables(runs: dict, res: dict) -> list[str]:
    """Paired differences pooled over conditions: per evaluation set, view count and (model, baseline) pair, the
    mean difference, how many pairs go the predicted way, and a two-sided t-test p on the differences."""
    from scipy import stats as st

    md, pooled = [], res.setdefault("pooled", {})
    views_present = sorted({views for _, views, _ in runs})
    for kind, title in EVALS.items():
        lines = []
        for views in views_present:
            for obj, base_obj in POOLED:
                conds = [c for c, v, o in runs if v == views and o == obj and (c, v, base_obj) in runs]
                row, n_pairs = {}, 0
                for _, k in DIFF:
                    diffs = [d for c in conds for d in paired_differences(
                        runs[(c, views, obj)].get(kind, {}), runs[(c, views, base_obj)].get(kind, {}), k)]
                    if not diffs:
                        continue
                    n_pairs = max(n_pairs, len(diffs))
                    predicted = sum((d < 0) if k in LOWER_IS_PREDICTED else (d > 0) for d in diffs)
                    p = float(st.ttest_1samp(diffs, 0.0).pvalue) if len(diffs) > 2 else float("nan")
                    row[k] = {"mean": float(np.mean(diffs)), "n": len(diffs), "predicted_direction": int(predicted),
                              "p": p}
                if not row:
                    continue
                pooled.setdefault(kind, {})[f"{views}/{obj}-{base_obj}"] = {"conditions": sorted(conds), **row}
                lines.append(f"| {views} | {obj} - {base_obj} | {', '.join(sorted(conds, key=condition_rank))} | "
                             f"{n_pairs} | " + " | ".join(
                                 f"{row[k]['mean']:+.3f} ({row[k]['predicted_direction']}/{row[k]['n']}, {p_text(row[k]['p'])})"
                                 if k in row else "" for _, k in DIFF) + " |")
        if lines:
            md += [f"Paired differences pooled over conditions ({title}); cells: mean (pairs in the predicted direction / "
                   "pairs, two-sided t-test p); predicted: KSG / BA / MINE higher, probe NMSE and view acc lower:", "",
                   "| views | comparison | conditions | pairs | " + " | ".join(c for c, _ in DIFF) + " |",
                   "|---|---|---|---|" + "---|" * len(DIFF), *lines, ""]
    return md


if __name__ == "__main__":
    raise SystemExit(main())
