"""Train a latent action model (MVP-LAM, single-view, AC, cycle) on multi-view LeRobot datasets.

Objectives: single (self-view reconstruction), mvp (self + cross-view reconstruction over every ordered
view pair), ac (additive composition on frame triples), cycle (cycle consistency); combine with '+',
e.g. mvp+ac. Runs on CPU or GPU; `accelerate launch -m lam_ros.cli train-lam ...` for several GPUs.
Writes <output>/checkpoint/ (config.json, model.safetensors, optimizer.safetensors, train_state.json)
and <output>/training_curves.png; --resume continues a checkpoint.
"""

from __future__ import annotations

import argparse
import json

from lam_ros.cli import is_main_process


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="LeRobot dataset root(s), comma-separated")
    parser.add_argument("--views", required=True, help="camera names, comma-separated (e.g. third_person,side)")
    parser.add_argument("--objective", default="mvp", help="single | mvp | ac | cycle | mvp+ac | ... (default mvp)")
    parser.add_argument("--frame-gap", default="0.6s", help="seconds ('0.6s') or steps ('3') between frames")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--holdout-frac", type=float, default=0.2, help="last fraction of episodes kept for eval")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue <output>/checkpoint if present")
    parser.add_argument("--cpu", action="store_true", help="force the CPU even when a GPU is present")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default; 1 is best on a busy CPU)")
    parser.add_argument("--feature-source", choices=["patch", "dinov2", "effnet"], default="patch",
                        help="what the LAM encodes and reconstructs. patch: pixel patches through a learned embedding "
                             "(offline); dinov2: a frozen transformers backbone's patch features (--backbone); effnet: "
                             "the frozen ImageNet EfficientNet-Lite0 trunk's 8x8 cells (offline, from its wheel)")
    parser.add_argument("--backbone", default="facebook/dinov2-base", help="hub id or local path (dinov2 source)")
    parser.add_argument("--feature-cache", default=None, metavar="FILE",
                        help="effnet source: a safetensors file of the trunk's per-frame features, read before and "
                             "written after training, so runs on the same frames compute each frame once")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--hidden-dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2, help="encoder and decoder blocks")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--quantizer", choices=["vq", "nsvq"], default="vq")
    parser.add_argument("--num-codes", type=int, default=16)
    parser.add_argument("--num-tokens", type=int, default=4)
    parser.add_argument("--code-dim", type=int, default=128)
    parser.add_argument("--usage-decay", type=float, default=0.9,
                        help="EMA decay of code usage; a code is restarted once its EMA falls below 5%% of uniform (default 0.9)")
    parser.add_argument("--usage-warn", type=float, default=0.25, help="warn when the fraction of codes used in a log window, or the effective codes "
                        "(perplexity / codebook size) at the end, fall below this (default: %(default)s)")


def run(args) -> int:
    from training.train_lam import TrainConfig, train

    model = {"feature_source": args.feature_source, "backbone": args.backbone, "image_size": args.image_size,
             "patch_size": args.patch_size, "hidden_dim": args.hidden_dim, "encoder_depth": args.depth,
             "decoder_depth": args.depth, "num_heads": args.heads, "quantizer": args.quantizer,
             "num_codes": args.num_codes, "num_tokens": args.num_tokens, "code_dim": args.code_dim,
             "usage_decay": args.usage_decay}
    cfg = TrainConfig(datasets=_csv(args.dataset), views=_csv(args.views), output=args.output,
                      objective=args.objective, frame_gap=args.frame_gap, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, holdout_frac=args.holdout_frac,
                      save_every=args.save_every, seed=args.seed, resume=args.resume, cpu=args.cpu,
                      threads=args.threads, feature_cache=args.feature_cache,
                      usage_warn_threshold=args.usage_warn, model=model)
    summary = train(cfg)
    if is_main_process():
        print(json.dumps(summary, indent=2))
    return 0
