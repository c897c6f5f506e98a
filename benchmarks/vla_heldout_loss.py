"""Held-out action loss of VLA checkpoints: the training objective (L1 on normalised, chunk-masked action
chunks, every frame including still ones) on episodes no checkpoint trained on, beside the same number of
training episodes. Used in docs/policy_ladder.md to show that offline loss does not rank closed-loop success.

    lam-ros record-sim --task carrot_on_plate --episodes 12 --seed 9000 --cameras third_person,wrist \\
        --image-size 64x64 --only-success --layout simpler --stop-after-success 10 --action-noise 0.01 -o val_carrot
    python benchmarks/vla_heldout_loss.py --heldout val_carrot val_stack --train outputs/demo/data/labelled_* \\
        --checkpoints outputs/demo/vla_finetuned outputs/demo/vla_scratch
"""

from __future__ import annotations

import argparse

import torch


def action_loss(model, datasets: list[str], max_episodes: int | None = None, batch_size: int = 64) -> tuple[float, int]:
    from training.vla_data import VLAFrames, load_episodes, make_collate

    data = load_episodes(datasets, cameras=model.config.cameras, require_actions=True,
                         image_size=model.config.image_size, max_episodes=max_episodes)
    frames = VLAFrames(data, model.config.cameras, model.config.chunk_size, normalizer=model.normalizer,
                       drop_noops=False, state_normalizer=model.state_normalizer)
    collate = make_collate(model)
    total, n = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            batch = collate([frames[i] for i in range(start, min(len(frames), start + batch_size))])
            out = model(batch["inputs"], actions=batch["actions"], action_mask=batch["action_mask"], state=batch.get("state"))
            total += float(out["action_loss"]) * len(batch["actions"])
            n += len(batch["actions"])
    return total / n, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heldout", nargs="+", required=True, help="LeRobot datasets no checkpoint trained on")
    p.add_argument("--train", nargs="+", required=True, help="the checkpoints' training datasets")
    p.add_argument("--train-episodes", type=int, default=12, help="training episodes per dataset to score (default 12)")
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from models.vla import load_vla

    print("| checkpoint | held-out L1 (frames) | training L1 (frames) |\n|---|---|---|")
    for ckpt in args.checkpoints:
        model = load_vla(ckpt).eval()
        held, n_held = action_loss(model, args.heldout)
        train, n_train = action_loss(model, args.train, max_episodes=args.train_episodes)
        print(f"| {ckpt} | {held:.4f} ({n_held}) | {train:.4f} ({n_train}) |", flush=True)


if __name__ == "__main__":
    main()
