"""Where a stage-2 finetuning step spends its time, and training throughput (docs/vla.md, "The finetuning step").

    # the demo's finetuning on this CPU, on its own data (needs `lam-ros demo --stages record,lam,pretrain`)
    MUJOCO_GL=egl OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_finetune_step.py --demo outputs/demo
    # a 0.5B-class backbone (random weights) on a GPU, bf16 autocast as training does there (issue 10's GPU row)
    python benchmarks/bench_finetune_step.py --synthetic --backbone random-0.5b --device cuda --mixed-precision bf16

``--demo``: builds the demo's latent-pretrained finetuning exactly as `lam-ros finetune-vla` does (the demo's
stage-1 checkpoint, robot state in, whole backbone + decoder trained, frozen trunk features read from the demo's
feature cache, batch 32 of both tasks). ``--synthetic``: a randomly initialised backbone preset, trained the
same way (whole backbone + decoder, state in, chunk 5) on random camera images at the model's size.

Steps are timed in interleaved blocks, one block per variant in turn, so that a change in the machine's load
hits every variant alike:

* ``mask``: the step as trained (the model passes SDPA its padded causal mask, ``VLA.padded_causal_mask``);
* ``hf-mask``: transformers builds that mask itself (the code before the change; only padded batches differ).

Per step it reports the batch's preparation (the processor, ``collate``), forward, backward and the optimizer
(AdamW + EMA as in training), median over the timed steps, and training throughput in steps/s and samples/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def demo_setup(demo: Path, episodes: int | None):
    """(model, next_batch) for the demo's finetuning on its recorded data."""
    from lam_ros.commands.demo import CHUNK_SIZE, FEATURE_CACHE, FINETUNE_BATCH
    from models.vla import ActionNormalizer
    from models.vla.normalization import StateNormalizer
    from training.finetune_vla import STATE_DIM, _start_model
    from training.vla_data import VLAFrames, load_episodes, make_collate

    labelled = sorted(str(p) for p in (demo / "data").glob("labelled_*"))
    init = demo / "vla_pretrained"
    if not labelled or not init.exists():
        raise SystemExit(f"{demo}: no labelled datasets or no vla_pretrained/; run `lam-ros demo --stages "
                         "record,lam,pretrain` first")
    model = _start_model(str(init), None, CHUNK_SIZE, STATE_DIM)
    data = load_episodes(labelled, cameras=model.config.cameras, require_actions=True, image_size=model.config.image_size,
                         max_episodes=episodes)
    model.normalizer = ActionNormalizer.fit(data.actions)
    model.state_normalizer = StateNormalizer.fit(data.states)
    dataset = VLAFrames(data, model.config.cameras, CHUNK_SIZE, normalizer=model.normalizer,
                        state_normalizer=model.state_normalizer)
    tower = model.base_model().model.vision_tower
    tower.cache_features()
    if (demo / FEATURE_CACHE).exists():
        tower.load_feature_cache(demo / FEATURE_CACHE)
    collate = make_collate(model)
    rng = np.random.default_rng(0)

    def next_batch() -> dict:
        return collate([dataset[int(i)] for i in rng.integers(0, len(dataset), FINETUNE_BATCH)])

    return model, next_batch


def synthetic_setup(backbone: str, cameras: list[str], batch: int):
    """(model, next_batch) for a random ``backbone`` preset on random images at its size."""
    from lam_ros.commands.demo import CHUNK_SIZE
    from models.vla import VLA, VLAConfig
    from random_vla import random_action_normalizer, random_state_normalizer
    from training.finetune_vla import STATE_DIM

    torch.manual_seed(0)
    model = VLA.create(VLAConfig(backbone=backbone, cameras=cameras, chunk_size=CHUNK_SIZE, stage="action",
                                 state_dim=STATE_DIM, finetune="full"))
    rng = np.random.default_rng(0)
    model.normalizer = random_action_normalizer(rng)
    model.state_normalizer = random_state_normalizer(rng, STATE_DIM)
    size = model.config.image_size
    images = [{c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in cameras} for _ in range(batch)]
    instructions = ["put the carrot on the plate"] * batch

    def next_batch() -> dict:
        return {"inputs": model.prepare_inputs(images, instructions),
                "actions": torch.from_numpy(rng.normal(0, 1, (batch, CHUNK_SIZE, 7)).astype(np.float32)),
                "action_mask": torch.ones(batch, CHUNK_SIZE),
                "state": torch.from_numpy(rng.normal(0, 1, (batch, STATE_DIM)).astype(np.float32))}

    return model, next_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("outputs/demo"), help="demo folder with data/ and vla_pretrained/")
    ap.add_argument("--episodes", type=int, help="labelled episodes to load per task, all by default: the demo's "
                    "batches mix its tasks, whose prompts differ in length (padding)")
    ap.add_argument("--synthetic", action="store_true", help="a random --backbone on random images instead of the demo")
    ap.add_argument("--backbone", default="random-0.5b", help="with --synthetic: the preset (default: %(default)s)")
    ap.add_argument("--cameras", default="third_person,wrist", help="with --synthetic (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=32, help="with --synthetic (default: %(default)s, the demo's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mixed-precision", choices=("no", "bf16"), default="no",
                    help="autocast as `finetune-vla --mixed-precision` (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for the step's CPU work (default: %(default)s, as the demo trains; 0: torch's default)")
    ap.add_argument("--blocks", type=int, default=6, help="timed blocks per variant (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="steps per block (default: %(default)s)")
    ap.add_argument("--variants", default="mask,hf-mask", help="comma-separated, of: mask, hf-mask")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from accelerate import Accelerator

    from models.vla.model import VLA
    from training.pretrain_vla import attention_for, make_ema, set_trainable

    if args.synthetic:
        model, next_batch = synthetic_setup(args.backbone, [c for c in args.cameras.split(",") if c], args.batch)
    else:
        model, next_batch = demo_setup(args.demo, args.episodes)
    model.config.stage, model.config.finetune = "action", "full"
    set_trainable(model, "action", with_codes=False)
    device = torch.device(args.device)
    cpu_mode = device.type == "cpu"
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=cpu_mode)
    model = model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-4)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)
    ema = make_ema(raw, 0.995, 0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model.train()
    own_mask = VLA.padded_causal_mask

    def step() -> dict[str, float]:
        sync()
        t0 = time.perf_counter()
        batch = next_batch()
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        rest = {k: batch[k].to(device) for k in ("actions", "action_mask", "state")}
        sync()
        t1 = time.perf_counter()
        with accelerator.autocast():
            out = model(inputs, **rest)
        sync()
        t2 = time.perf_counter()
        accelerator.backward(out["loss"])
        sync()
        t3 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update_parameters(raw)
        sync()
        t4 = time.perf_counter()
        return {"collate": t1 - t0, "forward": t2 - t1, "backward": t3 - t2, "optimizer": t4 - t3, "step": t4 - t0}

    variants = args.variants.split(",")
    times: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with attention_for(raw, args.mixed_precision, device):
        for _ in range(3):  # warm-up: every frame's trunk features, allocator, kernels' first calls
            step()
        for block in range(args.blocks):
            for v in variants:
                VLA.padded_causal_mask = own_mask if v == "mask" else (lambda self, attention_mask: None)
                times[v] += [step() for _ in range(args.steps)]
            print(f"block {block + 1}/{args.blocks}: " + ", ".join(
                f"{v} {1e3 * np.median([t['step'] for t in times[v]]):.1f} ms" for v in variants), flush=True)
    VLA.padded_causal_mask = own_mask
    batch_size = len(next_batch()["actions"])
    results: dict = {"setup": {"source": "synthetic" if args.synthetic else str(args.demo),
                               "backbone": args.backbone if args.synthetic else "demo stage-1 checkpoint",
                               "parameters": int(sum(p.numel() for p in raw.parameters())),
                               "trainable": int(sum(p.numel() for p in params)), "batch": batch_size,
                               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                               "mixed_precision": args.mixed_precision, "threads": args.threads,
                               "torch": torch.__version__}}
    if device.type == "cuda":
        results["setup"]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    for v in variants:
        med = {k: 1e3 * float(np.median([t[k] for t in times[v]])) for k in times[v][0]}
        med["steps_per_s"] = 1e3 / med["step"]
        med["samples_per_s"] = batch_size * med["steps_per_s"]
        results[v] = med
    print(json.dumps(results["setup"]))
    print("\n| variant | collate ms | forward ms | backward ms | optimizer + EMA ms | step ms | steps/s | samples/s |")
    print("|---|---|---|---|---|---|---|---|")
    for v in variants:
        r = results[v]
        print(f"| {v} | {r['collate']:.1f} | {r['forward']:.1f} | {r['backward']:.1f} | {r['optimizer']:.1f} | "
              f"{r['step']:.1f} | {r['steps_per_s']:.2f} | {r['samples_per_s']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
