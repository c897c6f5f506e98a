"""Evaluate a latent action model's action-centricity on LeRobot data (FACTS section 7).

Per view: KSG / Barber-Agakov / MINE mutual information between latents and net actions over
the frame gap (each with its shuffled-pair control), linear-probe NMSE (normalised by the test
split's variance, with its shuffled-pair control), AC structure metrics; across views: the
viewpoint-leakage probe (with a shuffled-label control); codebook usage / entropy.

Separating models needs the evaluation's own noise measured: every metric is computed for
several evaluation seeds (each seed: its own episode split for the probes and the variational
estimators, KSG projection, network initialisations, and an episode bootstrap for the AC
metrics) and reported as mean, sd and 95 % confidence interval. Probes and estimators split
by episode, never by transition (with fewer than ``MIN_EPISODES_FOR_GROUP_SPLIT`` episodes
they fall back to transitions and the report says so). Near-constant action dimensions (the
scripted expert's roll and pitch are IK noise) are listed and excluded. Each dataset's
recording conditions (exogenous noise, camera randomisation; ``lam_ros`` block of
meta/info.json) are reported beside the training datasets', with out-of-distribution flags.
Writes ``eval.json``, ``eval.md`` and ``eval_codes.png`` to the output directory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from models.lam import LatentActionModel, load_lam

from . import lam_metrics as M
from .lam_data import Episode, load_episodes, split_episodes

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_pairs(model: LatentActionModel, a: np.ndarray, b: np.ndarray, batch: int = 32):
    """uint8 (N, S, S, 3) x 2 -> (post-quantisation embeddings (N, T*D), codes (N, T)). ``batch`` 32, not 256:
    at 256 the activations are fresh mmaps page-faulted in per layer; a 3-view effnet `eval-lam` took 106 instead
    of 71 s (system time 21.7 against 3.3 s, one evaluation seed), with identical results."""
    device = next(model.parameters()).device
    zs, cs = [], []
    for i in range(0, len(a), batch):
        obs_a = model.observe(torch.from_numpy(a[i:i + batch]).to(device))
        obs_b = model.observe(torch.from_numpy(b[i:i + batch]).to(device))
        out = model.encode(obs_a, obs_b)
        zs.append(model.quantizer.lookup(out["codes"]).flatten(1).float().cpu())  # exact code vectors
        cs.append(out["codes"].cpu())
    return torch.cat(zs).numpy(), torch.cat(cs).numpy()


def collect(model: LatentActionModel, episodes: list[Episode], views: list[str], gap: int) -> dict:
    """Latents of every (t, t+gap) transition per view, plus triples for the AC metrics."""
    idx = [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep) - gap)]
    tri = [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep) - 2 * gap)]
    if not idx:
        raise ValueError(f"frame gap of {gap} steps is longer than every episode "
                         f"(longest {max(len(e) for e in episodes)} frames)")
    out = {"actions": np.stack([episodes[e].actions[t:t + gap] for e, t in idx]),
           "state_delta": np.stack([episodes[e].states[t + gap] - episodes[e].states[t] for e, t in idx]),
           "groups": np.array([e for e, _ in idx]),  # episode of each transition
           "views": {}}

    def frames(view, pairs, off):
        return np.stack([episodes[e].frames[view][t + off] for e, t in pairs])

    for v in views:
        z, codes = encode_pairs(model, frames(v, idx, 0), frames(v, idx, gap))
        rec = {"z": z, "codes": codes}
        if tri:
            rec["ac"] = {
                "z_ij": encode_pairs(model, frames(v, tri, 0), frames(v, tri, gap))[0],
                "z_jk": encode_pairs(model, frames(v, tri, gap), frames(v, tri, 2 * gap))[0],
                "z_ik": encode_pairs(model, frames(v, tri, 0), frames(v, tri, 2 * gap))[0],
                "z_ii": encode_pairs(model, frames(v, tri, 0), frames(v, tri, 0))[0],
                "z_ji": encode_pairs(model, frames(v, tri, gap), frames(v, tri, 0))[0],
                "state_delta": np.stack([episodes[e].states[t + gap] - episodes[e].states[t] for e, t in tri]),
                "groups": np.array([e for e, _ in tri]),
            }
        out["views"][v] = rec
    return out


MIN_EPISODES_FOR_GROUP_SPLIT = 5
DEFAULT_EVAL_SEEDS = 5


def dataset_conditions(root: str | Path) -> dict:
    """Recording conditions stored in a dataset's meta/info.json (``None`` where it does not say)."""
    info_path = Path(root) / "meta" / "info.json"
    block = (json.loads(info_path.read_text()).get("lam_ros") or {}) if info_path.is_file() else {}
    return {"dataset": str(root), "exogenous_noise": block.get("exogenous_noise"),
            "camera_randomization": block.get("camera_randomization")}


def distribution_report(eval_roots: list[str], train_roots: list[str] | None) -> dict:
    """Conditions of the evaluated and the training datasets, and whether evaluation is out of distribution:
    a noise setting no training dataset had, or camera-pose ranges no training dataset had."""
    evals = [dataset_conditions(r) for r in eval_roots]
    trains = [dataset_conditions(r) for r in (train_roots or []) if (Path(r) / "meta" / "info.json").is_file()]
    out: dict = {"eval": evals, "train": trains}
    if not trains:
        out["note"] = "training datasets unknown or missing: no out-of-distribution check"
        return out
    train_noise = [t["exogenous_noise"] for t in trains]
    train_cams = [t["camera_randomization"] for t in trains]
    out["noise_unseen_in_training"] = [e["dataset"] for e in evals if e["exogenous_noise"] not in train_noise]
    out["camera_ranges_unseen_in_training"] = [e["dataset"] for e in evals if e["camera_randomization"] not in train_cams]
    out["ood"] = bool(out["noise_unseen_in_training"] or out["camera_ranges_unseen_in_training"])
    return out


def _bootstrap(groups: np.ndarray, seed: int) -> np.ndarray:
    """Sample indices of an episode bootstrap (episodes drawn with replacement) of items with episode ids."""
    rng = np.random.default_rng(seed)
    episodes = np.unique(groups)
    drawn = rng.choice(episodes, size=len(episodes), replace=True)
    return np.concatenate([np.flatnonzero(groups == e) for e in drawn])


def evaluate(checkpoint: str | Path, datasets: list[str], output: str | Path, views: list[str] | None = None,
             split: str = "all", k: int = 4, proj_dim: int = 8, pca_dim: int = 16, mi_steps: int = 500,
             seed: int = 0, device: str = "cpu", backbone: str | None = None, eval_seeds: int = DEFAULT_EVAL_SEEDS,
             exclude_dims: str = "auto") -> dict:
    """Evaluate over ``eval_seeds`` seeds (seed, seed+1, ...). ``exclude_dims``: ``auto`` (near-constant
    net-action dims), ``none``, or comma-separated names/indices (e.g. ``droll,dpitch``)."""
    if eval_seeds < 1:
        raise ValueError(f"eval_seeds must be >= 1, got {eval_seeds}")
    model = load_lam(checkpoint, device=device, backbone=backbone)
    if hasattr(model.observer, "cache_features"):  # a frozen trunk: every frame is observed in several pairs
        model.observer.cache_features()
    cfg = model.cfg
    views = [v.removeprefix("observation.images.") for v in (views or cfg.views)]
    if not views:
        raise ValueError("no views: pass --views (the checkpoint does not list any)")
    episodes = load_episodes(datasets, views, cfg.image_size)
    state_path = Path(checkpoint) / "train_state.json"
    train_cfg = json.loads(state_path.read_text()).get("train_config", {}) if state_path.is_file() else {}
    if split == "heldout":
        frac = train_cfg.get("holdout_frac", 0.2)
        _, episodes = split_episodes(episodes, frac)
        if not episodes:
            raise ValueError(f"no held-out episodes (holdout fraction {frac} of too few episodes); use --split all")
    elif split != "all":
        raise ValueError(f"split must be 'all' or 'heldout', got {split!r}")
    gap = cfg.frame_gap
    data = collect(model, episodes, views, gap)
    raw = M.raw_net_actions(data["actions"])
    names = list(M.BRIDGE_DIMS) if raw.shape[1] == len(M.BRIDGE_DIMS) else [f"a{i}" for i in range(raw.shape[1])]
    excluded = _excluded_dims(exclude_dims, raw, names)
    net = M.net_actions(data["actions"], exclude=excluded)
    kept = [n for i, n in enumerate(names) if i not in excluded]
    by_episode = len(episodes) >= MIN_EPISODES_FOR_GROUP_SPLIT
    if not by_episode:
        log.warning("only %d episodes: probes split by transition, not by episode", len(episodes))
    groups = data["groups"] if by_episode else None
    seeds = list(range(seed, seed + eval_seeds))
    report: dict = {
        "checkpoint": str(checkpoint), "objective": cfg.objective, "views": views, "split": split,
        "episodes": len(episodes), "transitions": int(len(net)), "frame_gap_steps": gap, "eval_seeds": seeds,
        "probe_split": "episode" if by_episode else "transition (too few episodes)",
        "action_dims": kept,
        "excluded_action_dims": [{"name": names[i], "std": float(raw[:, i].std())} for i in excluded],
        "distribution": distribution_report(list(datasets), train_cfg.get("datasets")),
        "per_view": {},
    }
    per_seed_views: dict[str, list[dict]] = {v: [] for v in views}
    cross: list[dict] = []
    for s in seeds:
        for v, rec in data["views"].items():
            z = rec["z"]
            ksg = M.ksg_report(z, net, k=k, proj_dim=proj_dim, seed=s)
            var = M.variational_report(z, net, seed=s, steps=mi_steps, groups=groups) if mi_steps > 0 else None
            probe = M.linear_probe_nmse(z, net, pca_dim=pca_dim, seed=s, groups=groups)
            row = {"ksg_bits": ksg["mi_bits"], "ksg_shuffled_bits": ksg["shuffled_bits"],
                   "probe_nmse": probe["nmse"], "probe_shuffled_nmse": probe["shuffled_nmse"],
                   "probe_nmse_per_dim": probe["nmse_per_dim"]}
            if var is not None:
                row.update(ba_bits=var["barber_agakov"]["mi_bits"], ba_shuffled_bits=var["barber_agakov"]["shuffled_bits"],
                           mine_bits=var["mine"]["mi_bits"], mine_shuffled_bits=var["mine"]["shuffled_bits"])
            if "ac" in rec:
                ac = rec["ac"]
                # AC metrics have no randomness of their own: their spread is an episode bootstrap
                idx = _bootstrap(ac["groups"], s) if len(seeds) > 1 else np.arange(len(ac["groups"]))
                row.update(M.ac_structure(**{key: val[idx] for key, val in ac.items() if key != "groups"}))
            per_seed_views[v].append(row)
        if len(views) >= 2:
            zs = np.concatenate([data["views"][v]["z"] for v in views])
            labels = np.repeat(np.arange(len(views)), len(net))
            vg = np.tile(groups, len(views)) if groups is not None else None  # one episode: all views on one side
            leak = M.view_leakage_probe(zs, labels, seed=s, groups=vg)
            cross.append({"view_probe_acc": leak["accuracy"], "view_probe_shuffled_acc": leak["shuffled_accuracy"],
                          "view_probe_chance": leak["chance"]})
    for v in views:
        rows = per_seed_views[v]
        report["per_view"][v] = {
            "stats": {key: M.aggregate([r[key] for r in rows]) for key in rows[0] if key != "probe_nmse_per_dim"},
            "probe_nmse_per_dim": dict(zip(kept, np.mean([r["probe_nmse_per_dim"] for r in rows], 0).tolist())),
            "codebook": M.codebook_stats(data["views"][v]["codes"], cfg.num_codes),
            "per_seed": rows,
        }
    all_codes = np.concatenate([data["views"][v]["codes"] for v in views])
    report["codebook"] = M.codebook_stats(all_codes, cfg.num_codes)
    summary = {}
    for key in per_seed_views[views[0]][0]:
        if key == "probe_nmse_per_dim":
            continue
        summary[key] = M.aggregate([np.mean([per_seed_views[v][i][key] for v in views]) for i in range(len(seeds))])
    for key in (cross[0] if cross else {}):
        summary[key] = M.aggregate([c[key] for c in cross])
    summary["codebook_usage"] = M.aggregate([report["codebook"]["usage"]])
    summary["code_entropy_bits"] = M.aggregate([report["codebook"]["code_entropy_bits"]])
    report["summary"] = summary
    report["view_leakage_per_seed"] = cross
    write_outputs(report, all_codes, cfg.num_codes, Path(output))
    return report


def _excluded_dims(spec: str, raw: np.ndarray, names: list[str]) -> list[int]:
    spec = str(spec).strip()
    if spec == "auto":
        out = M.near_constant_dims(raw)
    elif spec in ("", "none"):
        out = []
    else:
        out = []
        for item in (x.strip() for x in spec.split(",") if x.strip()):
            if item.isdigit() and int(item) < len(names):
                out.append(int(item))
            elif item in names:
                out.append(names.index(item))
            else:
                raise ValueError(f"--exclude-dims: unknown action dim {item!r}; dims: {', '.join(names)} (or auto, none)")
    if len(set(out)) >= len(names):
        raise ValueError("every action dim would be excluded: nothing to measure")
    return sorted(set(out))


SUMMARY_COLUMNS = (
    ("KSG", "ksg_bits"), ("KSG shuf", "ksg_shuffled_bits"), ("BA", "ba_bits"), ("BA shuf", "ba_shuffled_bits"),
    ("MINE", "mine_bits"), ("MINE shuf", "mine_shuffled_bits"), ("probe NMSE", "probe_nmse"),
    ("NMSE shuf", "probe_shuffled_nmse"), ("view acc", "view_probe_acc"), ("view acc shuf", "view_probe_shuffled_acc"),
    ("view chance", "view_probe_chance"), ("additivity", "additivity_residual"), ("identity", "identity"),
    ("inverse", "inverse"), ("r(|z|,|ds|)", "norm_state_r"), ("code usage", "codebook_usage"),
    ("code entropy", "code_entropy_bits"),
)


def fmt(stat: dict | float | None, digits: int = 3) -> str:
    """``mean ± ci95`` of an :func:`training.lam_metrics.aggregate` dict (just the mean when n = 1)."""
    if stat is None:
        return "-"
    if not isinstance(stat, dict):
        return f"{stat:.{digits}f}"
    if stat["n"] > 1 and np.isfinite(stat["ci95"]):
        return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def markdown_table(rows: dict[str, dict]) -> str:
    """One row per evaluated model (name -> summary of aggregates); cells are mean ± 95 % CI."""
    keys = [(c, k) for c, k in SUMMARY_COLUMNS if any(k in s for s in rows.values())]
    head = "| model | " + " | ".join(c for c, _ in keys) + " |\n|---|" + "---|" * len(keys) + "\n"
    return head + "".join(f"| {name} | " + " | ".join(fmt(s.get(k)) for _, k in keys) + " |\n" for name, s in rows.items())


def write_outputs(report: dict, codes: np.ndarray, num_codes: int, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output.mkdir(parents=True, exist_ok=True)
    (output / "eval.json").write_text(json.dumps(report, indent=2))
    dist = report["distribution"]
    md = [f"# LAM evaluation: {report['checkpoint']}", "",
          f"objective `{report['objective']}`, views {report['views']}, split `{report['split']}`, "
          f"{report['episodes']} episodes, {report['transitions']} transitions per view, gap {report['frame_gap_steps']} steps; "
          f"evaluation seeds {report['eval_seeds']} (cells: mean ± 95 % CI over them); probes split by {report['probe_split']}.",
          "", f"Action dims measured: {', '.join(report['action_dims'])}; excluded as near-constant: "
          + (", ".join(f"{d['name']} (std {d['std']:.2g})" for d in report["excluded_action_dims"]) or "none") + ".",
          "", markdown_table({report["objective"]: report["summary"]}), "", "Recording conditions:", ""]
    for e in dist["eval"]:
        md.append(f"- eval `{e['dataset']}`: noise {e['exogenous_noise']}, cameras {e['camera_randomization']}")
    for t in dist["train"]:
        md.append(f"- train `{t['dataset']}`: noise {t['exogenous_noise']}, cameras {t['camera_randomization']}")
    if dist.get("ood"):
        md.append(f"- **out of distribution**: noise unseen in training {dist['noise_unseen_in_training']}; "
                  f"camera ranges unseen in training {dist['camera_ranges_unseen_in_training']}")
    elif "note" in dist:
        md.append(f"- {dist['note']}")
    (output / "eval.md").write_text("\n".join(md))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(num_codes), np.bincount(codes.ravel(), minlength=num_codes))
    ax.set_xlabel("code")
    ax.set_ylabel("count")
    ax.set_title("codebook usage (all views, all tokens)")
    fig.tight_layout()
    fig.savefig(output / "eval_codes.png", dpi=100)
    plt.close(fig)
