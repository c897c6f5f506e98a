"""End-to-end latency of the in-process pipeline (camera frame -> checked command).

Runs `lam_ros.pipeline.run_sim` (cameras -> sync -> latent actions -> policy ->
safety -> simulator) with 3 cameras and reports p50/p99 latency and the
sustained control rate, excluding warm-up steps. Not a test: numbers go to
docs/ros.md. Target (issue 6): p99 < one control period (200 ms at 5 Hz) on
CPU with the tiny models; < 100 ms on a GPU with DINOv2-Base + a 0.5B backbone.

  python benchmarks/bench_pipeline.py                  # tiny random VLA, CPU
  python benchmarks/bench_pipeline.py --checkpoint runs/vla --device cuda
  python benchmarks/bench_pipeline.py --vla-backbone random-0.5b --lam-backbone dinov2-base --device cuda

``--vla-backbone`` / ``--lam-backbone`` build randomly initialised checkpoints of a realistic size (same compute
as trained weights): a 0.5B-class VLA (SigLIP-B/16 + a Qwen2-0.5B-shaped Llama, bf16 on CUDA as the runtime
loads it) and an MVP-LAM over a frozen DINOv2-Base (UniVLA-sized, 224 px). ``dinov2-smoke`` is a 1-layer,
32-wide stand-in for checking the GPU script on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tiny_checkpoint(directory: Path, cameras, backbone: str = "tiny") -> Path:
    """A randomly initialised stage-2 VLA of the ``backbone`` preset ("tiny": the configuration CI uses)."""
    import torch

    from models.vla import VLA, VLAConfig
    from random_vla import random_action_normalizer

    torch.manual_seed(0)
    model = VLA.create(VLAConfig(backbone=backbone, cameras=list(cameras), robot="widowx", chunk_size=5, stage="action"))
    model.normalizer = random_action_normalizer(np.random.default_rng(0))
    return model.save(directory)


def tiny_lam_checkpoint(directory: Path, cameras, image_size: int, backbone: str = "patch") -> Path:
    """A randomly initialised MVP-LAM over ``cameras``: the offline configuration ("patch": learned patch features
    on pixels at ``image_size``), or a UniVLA-sized one over a frozen random DINOv2-Base at 224 px ("dinov2-base";
    "dinov2-smoke": 1 layer, 32 wide)."""
    import torch

    from models.lam import LAMConfig, LatentActionModel, objective_weights, save_lam

    torch.manual_seed(0)
    if backbone == "patch":
        cfg = LAMConfig(image_size=image_size, views=list(cameras), objective="mvp", loss_weights=objective_weights("mvp"))
    elif backbone in ("dinov2-base", "dinov2-smoke"):
        from random_lam import dinov2_lam_config

        cfg = dinov2_lam_config(directory.parent / "dino", smoke=backbone == "dinov2-smoke", views=list(cameras))
    else:
        raise SystemExit(f"--lam-backbone {backbone!r}: expected patch, dinov2-base or dinov2-smoke")
    save_lam(LatentActionModel(cfg), directory)
    return directory


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="", help="VLA checkpoint; default: a tiny random one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cameras", default="third_person,side,wrist")
    p.add_argument("--image-size", default="128x128")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--lam", default="", help="LAM checkpoint for the latent-action stage; default: a tiny random one")
    p.add_argument("--no-lam", action="store_true", help="leave the latent-action stage out")
    p.add_argument("--vla-backbone", default="tiny", help="preset of the random VLA built without --checkpoint "
                   "(tiny, random-0.5b; default: %(default)s)")
    p.add_argument("--lam-backbone", default="patch", choices=("patch", "dinov2-base", "dinov2-smoke"),
                   help="feature source of the random LAM built without --lam (default: %(default)s)")
    p.add_argument("--out", default="", help="write the JSON result here")
    args = p.parse_args()

    import sim
    from lam_ros.pipeline import load_latent_model, run_sim
    from lam_ros.policy import Policy
    from lam_ros.safety import SafetyConfig, SafetyLayer

    cameras = [c for c in args.cameras.split(",") if c]
    ckpt = args.checkpoint or tiny_checkpoint(Path(tempfile.mkdtemp()) / "vla", cameras, args.vla_backbone)
    policy = Policy.load(ckpt, device=args.device)
    latent_model = None
    if not args.no_lam:
        from sim.cameras import parse_image_size

        size = parse_image_size(args.image_size)[0]
        lam_ckpt = args.lam or tiny_lam_checkpoint(Path(tempfile.mkdtemp()) / "lam", cameras, size, args.lam_backbone)
        latent_model = load_latent_model(str(lam_ckpt), device=args.device)
    env = sim.make_env(robot="widowx", task="carrot_on_plate", cameras=tuple(cameras), image_size=args.image_size)
    safety = SafetyLayer(SafetyConfig.for_robot("widowx", dry_run=False))
    t0 = time.perf_counter()
    summary = run_sim(env, policy, safety, cameras, max_steps=args.steps + args.warmup, latent_model=latent_model)
    lat = np.asarray(summary.latencies_s[args.warmup:]) * 1e3
    result = {
        "device": args.device,
        "vla": args.checkpoint or f"random {args.vla_backbone}",
        "lam": None if args.no_lam else (args.lam or f"random {args.lam_backbone}"),
        "cameras": cameras,
        "image_size": args.image_size,
        "latent_actions": not args.no_lam,
        "latent_pairs": summary.latent_pairs,
        "steps_measured": int(lat.size),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
        "sustained_hz_incl_physics_and_render": round(summary.steps / (time.perf_counter() - t0), 2),
        "commands_sent": summary.sent,
    }
    env.close()
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
