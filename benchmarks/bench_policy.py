"""Policy step latency (p50 / p99) and achievable control rate.

Builds a randomly initialised VLA of the chosen backbone preset, saves it as a
checkpoint, loads it with ``lam_ros.policy.Policy`` (LoRA merged, bf16 on CUDA)
and times ``Policy.step`` on fixed multi-view 128x128 images. Executed actions/s
= chunk_size / step latency when every action of a chunk is executed (the rate
is then bounded by the robot's 5 Hz control loop); with ensembling at every step
(replan_every=1) the control rate is 1 / latency.

    .venv/bin/python benchmarks/bench_policy.py --backbone tiny --device cpu --iters 100
    .venv/bin/python benchmarks/bench_policy.py --backbone random-0.5b --device cuda --iters 200
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny", help="preset (tiny, random-0.5b) or hub id / path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cameras", default="third_person,wrist")
    parser.add_argument("--chunk-size", type=int, default=5)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--json", help="write the result here as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from lam_ros.policy import Policy
    from models.vla import VLA, LoraSettings, VLAConfig
    from random_vla import random_action_normalizer

    if args.threads:
        torch.set_num_threads(args.threads)
    cameras = [c for c in args.cameras.split(",") if c]
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = VLA.create(VLAConfig(backbone=args.backbone, cameras=cameras, chunk_size=args.chunk_size, stage="action"))
    model.normalizer = random_action_normalizer(rng)
    model.apply_lora(LoraSettings())
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        del model
        t0 = time.perf_counter()
        policy = Policy.load(tmp, device=args.device)
        load_s = time.perf_counter() - t0
    images = {c: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for c in cameras}
    instruction = "put the carrot on the plate"
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for _ in range(args.warmup):
        policy.step(images, instruction)
    sync()
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        policy.step(images, instruction)
        sync()
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    result = {
        "backbone": args.backbone,
        "parameters": int(n_params),
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(0),
        "dtype": str(next(policy.model.backbone.parameters()).dtype),
        "cameras": cameras,
        "chunk_size": args.chunk_size,
        "torch_threads": torch.get_num_threads(),
        "iters": args.iters,
        "load_s": round(load_s, 2),
        "step_ms_p50": round(p50, 2),
        "step_ms_p99": round(p99, 2),
        "inference_hz_p99": round(1000 / p99, 1),
        "actions_per_s_chunked_p99": round(args.chunk_size * 1000 / p99, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
