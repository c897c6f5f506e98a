"""Evaluate a latent action model's action-centricity on LeRobot datasets.

Reports (per view, then averaged) mutual information I(Z; A) in bits by KSG, Barber-Agakov and MINE,
each with its shuffled-pair control; linear-probe NMSE (PCA, net action over the frame gap, normalised by
the test split's variance) with its shuffled control; AC structure metrics; viewpoint-leakage probe
accuracy vs chance and vs a shuffled-label probe; codebook usage and entropy. Every metric is the mean,
sd and 95 % CI over --eval-seeds evaluation seeds; probes split by episode; near-constant action dims
are listed and excluded (--exclude-dims). The datasets' recording conditions (exogenous noise, camera
ranges) are reported beside the training datasets', flagging out-of-distribution evaluation.
Writes <output>/eval.json, eval.md and eval_codes.png.

Example (out-of-distribution: a dataset recorded with --camera-ood or unseen --noise):
  lam-ros eval-lam --checkpoint runs/mvp/checkpoint --dataset data/ood_cams --split all --output runs/mvp/eval_ood
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--dataset", required=True, help="LeRobot dataset root(s), comma-separated")
    parser.add_argument("--views", default=None, help="cameras, comma-separated (default: the checkpoint's views)")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--split", choices=["all", "heldout"], default="all",
                        help="heldout: only the episodes training held out (same --holdout-frac rule)")
    parser.add_argument("--k", type=int, default=4, help="KSG neighbours (3..5)")
    parser.add_argument("--proj-dim", type=int, default=8, help="random projection dim of latents for KSG")
    parser.add_argument("--pca-dim", type=int, default=16, help="PCA dim of latents for the linear probe")
    parser.add_argument("--mi-steps", type=int, default=500, help="training steps of the BA / MINE estimators (0: skip them)")
    parser.add_argument("--seed", type=int, default=0, help="first evaluation seed")
    parser.add_argument("--eval-seeds", type=int, default=5,
                        help="evaluation seeds (seed, seed+1, ...): splits, projections, initialisations (default 5)")
    parser.add_argument("--exclude-dims", default="auto",
                        help="action dims left out of every metric: auto (near-constant ones, e.g. the scripted "
                             "expert's droll/dpitch), none, or names/indices like droll,dpitch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default=None, help="override where the frozen backbone is (dinov2 source)")


def run(args) -> int:
    from training.eval_lam import evaluate

    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
    datasets = [d.strip() for d in args.dataset.split(",") if d.strip()]
    report = evaluate(args.checkpoint, datasets, args.output, views=views, split=args.split, k=args.k,
                      proj_dim=args.proj_dim, pca_dim=args.pca_dim, mi_steps=args.mi_steps, seed=args.seed,
                      device=args.device, backbone=args.backbone, eval_seeds=args.eval_seeds,
                      exclude_dims=args.exclude_dims)
    print((__import__("pathlib").Path(args.output) / "eval.md").read_text())
    return 0 if report else 1
