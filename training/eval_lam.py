"""Evaluate a latent action model's action-centricity on LeRobot data (FACTS section 7).

Per view: KSG / Barber-Agakov / MINE mutual information between latents and net actions over
the frame gap (each with its shuffled-pair sanity value), linear-probe NMSE after PCA, AC
structure metrics; across views: the viewpoint-leakage probe; and codebook usage / entropy.
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
def encode_pairs(model: LatentActionModel, a: np.ndarray, b: np.ndarray, batch: int = 256):
    """uint8 (N, S, S, 3) x 2 -> (post-quantisation embeddings (N, T*D), codes (N, T))."""
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
            }
        out["views"][v] = rec
    return out


def evaluate(checkpoint: str | Path, datasets: list[str], output: str | Path, views: list[str] | None = None,
             split: str = "all", k: int = 4, proj_dim: int = 8, pca_dim: int = 16, mi_steps: int = 500,
             seed: int = 0, device: str = "cpu", backbone: str | None = None) -> dict:
    model = load_lam(checkpoint, device=device, backbone=backbone)
    cfg = model.cfg
    views = [v.removeprefix("observation.images.") for v in (views or cfg.views)]
    if not views:
        raise ValueError("no views: pass --views (the checkpoint does not list any)")
    episodes = load_episodes(datasets, views, cfg.image_size)
    if split == "heldout":
        state_path = Path(checkpoint) / "train_state.json"
        frac = json.loads(state_path.read_text())["train_config"]["holdout_frac"] if state_path.is_file() else 0.2
        _, episodes = split_episodes(episodes, frac)
        if not episodes:
            raise ValueError(f"no held-out episodes (holdout fraction {frac} of too few episodes); use --split all")
    elif split != "all":
        raise ValueError(f"split must be 'all' or 'heldout', got {split!r}")
    gap = cfg.frame_gap
    data = collect(model, episodes, views, gap)
    net = M.net_actions(data["actions"])
    report: dict = {"checkpoint": str(checkpoint), "objective": cfg.objective, "views": views, "split": split,
                    "episodes": len(episodes), "transitions": int(len(net)), "frame_gap_steps": gap, "per_view": {}}
    for v, rec in data["views"].items():
        z = rec["z"]
        r = {"ksg": M.ksg_report(z, net, k=k, proj_dim=proj_dim, seed=seed),
             **M.variational_report(z, net, seed=seed, steps=mi_steps),
             "probe": M.linear_probe_nmse(z, net, pca_dim=pca_dim, seed=seed),
             "codebook": M.codebook_stats(rec["codes"], cfg.num_codes)}
        if "ac" in rec:
            r["ac_structure"] = M.ac_structure(**rec["ac"])
        report["per_view"][v] = r
    if len(views) >= 2:
        zs = np.concatenate([data["views"][v]["z"] for v in views])
        labels = np.repeat(np.arange(len(views)), len(net))
        report["view_leakage"] = M.view_leakage_probe(zs, labels, seed=seed)
    all_codes = np.concatenate([data["views"][v]["codes"] for v in views])
    report["codebook"] = M.codebook_stats(all_codes, cfg.num_codes)
    report["summary"] = summarize(report)
    write_outputs(report, all_codes, cfg.num_codes, Path(output))
    return report


def summarize(report: dict) -> dict[str, float]:
    pv = list(report["per_view"].values())
    mean = lambda f: float(np.mean([f(r) for r in pv]))  # noqa: E731
    s = {"ksg_bits": mean(lambda r: r["ksg"]["mi_bits"]), "ksg_shuffled_bits": mean(lambda r: r["ksg"]["shuffled_bits"]),
         "ba_bits": mean(lambda r: r["barber_agakov"]["mi_bits"]),
         "ba_shuffled_bits": mean(lambda r: r["barber_agakov"]["shuffled_bits"]),
         "mine_bits": mean(lambda r: r["mine"]["mi_bits"]), "mine_shuffled_bits": mean(lambda r: r["mine"]["shuffled_bits"]),
         "probe_nmse": mean(lambda r: r["probe"]["nmse"]), "codebook_usage": report["codebook"]["usage"],
         "code_entropy_bits": report["codebook"]["code_entropy_bits"]}
    if all("ac_structure" in r for r in pv):
        for key in ("additivity_residual", "identity", "inverse", "norm_state_r"):
            s[key] = mean(lambda r, key=key: r["ac_structure"][key])
    if "view_leakage" in report:
        s["view_probe_acc"] = report["view_leakage"]["accuracy"]
        s["view_probe_chance"] = report["view_leakage"]["chance"]
    return s


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """One row per evaluated model (name -> summary)."""
    keys = sorted({k for s in rows.values() for k in s}, key=lambda k: list(next(iter(rows.values()))).index(k)
                  if k in next(iter(rows.values())) else 99)
    head = "| model | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n"
    return head + "".join(
        f"| {name} | " + " | ".join(f"{s[k]:.3f}" if k in s else "-" for k in keys) + " |\n" for name, s in rows.items())


def write_outputs(report: dict, codes: np.ndarray, num_codes: int, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output.mkdir(parents=True, exist_ok=True)
    (output / "eval.json").write_text(json.dumps(report, indent=2))
    md = [f"# LAM evaluation: {report['checkpoint']}", "",
          f"objective `{report['objective']}`, views {report['views']}, split `{report['split']}`, "
          f"{report['episodes']} episodes, {report['transitions']} transitions per view, gap {report['frame_gap_steps']} steps.",
          "", markdown_table({report["objective"]: report["summary"]})]
    (output / "eval.md").write_text("\n".join(md))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(num_codes), np.bincount(codes.ravel(), minlength=num_codes))
    ax.set_xlabel("code")
    ax.set_ylabel("count")
    ax.set_title("codebook usage (all views, all tokens)")
    fig.tight_layout()
    fig.savefig(output / "eval_codes.png", dpi=100)
    plt.close(fig)
