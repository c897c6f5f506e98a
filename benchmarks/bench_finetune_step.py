"""Where the demo's finetuning step spends its time on this CPU, and what a change to it saves (docs/vla.md,
"The finetuning step").

    MUJOCO_GL=egl OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_finetune_step.py --demo outputs/demo

Needs a demo folder whose record, lam and pretrain stages have run (`lam-ros demo --stages record,lam,pretrain`).
Builds the demo's latent-pretrained finetuning exactly as `lam-ros finetune-vla` does (the demo's stage-1
checkpoint, robot state in, whole backbone + decoder trained, frozen trunk features read from the demo's
feature cache, batch 32) and times training steps in interleaved blocks, one block per variant in turn, so
that a change in the machine's load hits every variant alike:

* ``mask``: the step as trained (the model passes SDPA its padded causal mask, ``VLA.padded_causal_mask``);
* ``hf-mask``: transformers builds that mask itself (the code before the change).

Per step it reports the batch's preparation (the processor, ``collate``), forward, backward and the optimizer
(AdamW + EMA as in training), median over the timed steps, and training throughput in samples/s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("outputs/demo"), help="demo folder with data/ and vla_pretrained/")
    ap.add_argument("--episodes", type=int, help="labelled episodes to load, all by default: the demo's "
                    "batches mix its tasks, whose prompts differ in length (padding)")
    ap.add_argument("--blocks", type=int, default=6, help="timed blocks per variant (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="steps per block (default: %(default)s)")
    ap.add_argument("--variants", default="mask,hf-mask", help="comma-separated, of: mask, hf-mask")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from lam_ros.commands.demo import CHUNK_SIZE, FEATURE_CACHE, FINETUNE_BATCH
    from models.vla import ActionNormalizer
    from models.vla.model import VLA
    from models.vla.normalization import StateNormalizer
    from training.finetune_vla import STATE_DIM, _start_model
    from training.pretrain_vla import make_ema, set_trainable
    from training.vla_data import VLAFrames, load_episodes, make_collate

    labelled = sorted(str(p) for p in (args.demo / "data").glob("labelled_*"))
    init = args.demo / "vla_pretrained"
    if not labelled or not init.exists():
        raise SystemExit(f"{args.demo}: no labelled datasets or no vla_pretrained/; run `lam-ros demo --stages "
                         "record,lam,pretrain` first")
    model = _start_model(str(init), None, CHUNK_SIZE, STATE_DIM)
    data = load_episodes(labelled, cameras=model.config.cameras, require_actions=True, image_size=model.config.image_size,
                         max_episodes=args.episodes)
    model.normalizer = ActionNormalizer.fit(data.actions)
    model.state_normalizer = StateNormalizer.fit(data.states)
    model.config.stage, model.config.finetune = "action", "full"
    set_trainable(model, "action", with_codes=False)
    dataset = VLAFrames(data, model.config.cameras, CHUNK_SIZE, normalizer=model.normalizer,
                        state_normalizer=model.state_normalizer)
    tower = model.base_model().model.vision_tower
    tower.cache_features()
    if (args.demo / FEATURE_CACHE).exists():
        tower.load_feature_cache(args.demo / FEATURE_CACHE)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-4)
    ema = make_ema(model, 0.995, 0)
    collate = make_collate(model)
    rng = np.random.default_rng(0)
    model.train()
    own_mask = VLA.padded_causal_mask

    def step() -> dict[str, float]:
        t0 = time.perf_counter()
        batch = collate([dataset[int(i)] for i in rng.integers(0, len(dataset), FINETUNE_BATCH)])
        t1 = time.perf_counter()
        out = model(batch["inputs"], actions=batch["actions"], action_mask=batch["action_mask"], state=batch["state"])
        t2 = time.perf_counter()
        out["loss"].backward()
        t3 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update_parameters(model)
        t4 = time.perf_counter()
        return {"collate": t1 - t0, "forward": t2 - t1, "backward": t3 - t2, "optimizer": t4 - t3, "step": t4 - t0}

    variants = args.variants.split(",")
    times: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for _ in range(3):  # warm-up: every frame's trunk features, allocator, first-call costs
        step()
    for block in range(args.blocks):
        for v in variants:
            VLA.padded_causal_mask = own_mask if v == "mask" else (lambda self, attention_mask: None)
            times[v] += [step() for _ in range(args.steps)]
        print(f"block {block + 1}/{args.blocks}: " + ", ".join(
            f"{v} {1e3 * np.median([t['step'] for t in times[v]]):.1f} ms" for v in variants), flush=True)
    VLA.padded_causal_mask = own_mask
    results = {}
    for v in variants:
        med = {k: 1e3 * float(np.median([t[k] for t in times[v]])) for k in times[v][0]}
        med["samples_per_s"] = FINETUNE_BATCH / (med["step"] / 1e3)
        results[v] = med
    print("\n| variant | collate ms | forward ms | backward ms | optimizer + EMA ms | step ms | samples/s |")
    print("|---|---|---|---|---|---|---|")
    for v, r in results.items():
        print(f"| {v} | {r['collate']:.1f} | {r['forward']:.1f} | {r['backward']:.1f} | {r['optimizer']:.1f} | "
              f"{r['step']:.1f} | {r['samples_per_s']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))


if __name__ == "__main__":
    main()
