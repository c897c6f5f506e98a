"""Benchmark the latent action model: training throughput and online inference latency.

    .venv/bin/python benchmarks/bench_lam.py [--device cpu|cuda] [--threads 1] [--feature-source patch|effnet]
    .venv/bin/python benchmarks/bench_lam.py --device cuda --dinov2-base

Training: transitions/s (objective mvp, 2 and 3 views, batch 16, fp32 as train-lam trains) on the chosen
feature source: ``patch`` (the offline default, a learned patch embedding on pixels) or ``effnet`` (the
frozen ImageNet EfficientNet-Lite0 trunk's cells; its features are recomputed every step here, as a
run without a feature cache does). Inference: p50 / p99 latency of ``LatentActionRuntime.infer`` at
batch 1 for 2 and 3 views (the online path: every frame goes through the trunk). ``--dinov2-base``
builds a randomly initialised DINOv2-Base (ViT-B/14, 224x224; same compute as the real weights) as
the frozen backbone, with a UniVLA-sized LAM behind it (issue 11's GPU cell). ``--json PATH`` also writes the
result there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lam_ros.latent_actions import LatentActionRuntime  # noqa: E402
from models.lam import LAMConfig, LatentActionModel, compute_losses, objective_weights, save_lam  # noqa: E402


def train_throughput(cfg: LAMConfig, device: str, steps: int, batch: int, views: int = 2) -> float:
    model = LatentActionModel(cfg).to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 3e-4)
    frames = torch.randint(0, 256, (batch, views, 2, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8, device=device)
    for i in range(steps + 3):
        if i == 3:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss, _, _ = compute_losses(model, frames, cfg.loss_weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def latency(rt: LatentActionRuntime, views: int, iters: int) -> dict[str, float]:
    s = rt.image_size
    rng = np.random.default_rng(0)
    ft = {f"v{i}": rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8) for i in range(views)}
    ftk = {f"v{i}": rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8) for i in range(views)}
    times = []
    for i in range(iters + 5):
        t0 = time.perf_counter()
        rt.infer(ft, ftk)  # returns numpy: includes the device->host copy (synchronises)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)), "iters": iters}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--feature-source", choices=("patch", "effnet"), default="patch")
    ap.add_argument("--dinov2-base", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--smoke", action="store_true", help="with --dinov2-base: a 1-layer, 32-wide DINOv2 and LAM instead, "
                    "to check the GPU script's plumbing on a CPU (the numbers mean nothing)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {"device": args.device, "threads": args.threads, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        if args.dinov2_base:
            from random_lam import describe, dinov2_lam_config

            cfg = dinov2_lam_config(Path(tmp) / "dino", smoke=args.smoke)
            results["config"] = describe(args.smoke)
        else:
            cfg = LAMConfig(feature_source=args.feature_source, objective="mvp", loss_weights=objective_weights("mvp"))
            results["config"] = {
                "patch": "offline default: patch 8 on 64x64, 2+2 blocks x 128",
                "effnet": "frozen EfficientNet-Lite0 trunk (64 px frames at 128 px, 8x8 cells x 112) + 2+2 blocks x 128",
            }[args.feature_source]
        for views in (2, 3):
            cfg.views = [f"v{i}" for i in range(views)]
            rate = train_throughput(cfg, args.device, args.train_steps, 16, views)
            results[f"train_{views}views_transitions_per_s"] = rate
            results[f"train_{views}views_steps_per_s"] = rate / 16
        save_lam(LatentActionModel(cfg), Path(tmp) / "ck")
        rt = LatentActionRuntime.from_checkpoint(Path(tmp) / "ck", device=args.device)
        for views in (2, 3):
            results[f"infer_{views}views_batch1"] = latency(rt, views, args.iters)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
