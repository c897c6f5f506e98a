"""Stage 1 of the VLA: label LeRobot datasets with a trained latent action model
(no ground-truth actions) and train the vision-language backbone to predict the
LAM's code tokens from the current images and the instruction.

Writes a checkpoint directory (safetensors + JSON) that `lam-ros finetune-vla
--init` continues from; `--resume` continues an interrupted run. Works with
`accelerate launch -m lam_ros.cli pretrain-vla ...` on several GPUs unchanged.
"""

from __future__ import annotations

import json

from lam_ros.cli import is_main_process


def add_training_args(parser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    g.add_argument("--batch-size", type=int, default=16, help="per-device batch size (default 16)")
    g.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    g.add_argument("--lr-schedule", choices=["constant", "cosine", "linear"], default="constant",
                   help="learning-rate schedule over --steps (default constant)")
    g.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up steps (default 0)")
    g.add_argument("--ema-decay", type=float, default=0.0,
                   help="save an exponential moving average of the weights with this decay, e.g. 0.995 (default 0: off)")
    g.add_argument("--feature-cache", metavar="FILE",
                   help="safetensors file memoising a frozen pretrained vision trunk's features per frame: read "
                        "before training, written once every frame is in it, shared by runs on the same frames (e.g. stage 1 and stage 2)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip, 0 = off (default 1.0)")
    g.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16", "fp16"],
                   help="auto = bf16 on GPU, fp32 on CPU. bf16 on a CPU with bf16 instructions (avx512_bf16, AMX) "
                        "trains with eager attention and cut the demo's finetuning time by about 30 %% here, but "
                        "its policies succeeded 11 points less often than fp32's over 5 seeds at the same loss "
                        "(docs/vla.md, 'bf16 on the CPU')")
    g.add_argument("--resume", action="store_true", help="continue the run saved in --out")


def training_settings(args):
    from training.pretrain_vla import TrainSettings

    return TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        save_every=args.save_every,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        feature_cache=args.feature_cache,
    )


def split_cameras(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def configure(parser) -> None:
    parser.add_argument("--dataset", nargs="+", required=True, help="local LeRobot dataset directories")
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--lam", required=True, help="trained LAM checkpoint used to label the frames")
    parser.add_argument("--backbone", default="tiny",
                        help="'tiny' (offline test config, random weights), 'tiny-effnet' (the tiny Llama behind a frozen "
                             "ImageNet EfficientNet-Lite0 vision trunk, 128 px, 64 tokens per camera; offline), 'tiny-effnet-pool2' "
                             "(the same, 2x2 cells averaged: 16 tokens per camera), 'random-0.5b', "
                             "or a hub id / local path of an image-text-to-text model")
    parser.add_argument("--cameras", help="comma-separated cameras (default: all cameras the datasets share)")
    parser.add_argument("--frame-gap", type=int, default=3, help="label the transition t -> t+k (default 3 = 0.6 s at 5 Hz)")
    parser.add_argument("--robot", help="robot name stored in the checkpoint (default: the dataset's robot_type)")
    parser.add_argument("--lora-rank", type=int, default=0, help="0 = train the full backbone (default); >0 = LoRA of that rank")
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="device for the LAM labeller (default cpu)")
    add_training_args(parser)


def run(args) -> int:
    from models.vla import LoraSettings
    from training import vla_data
    from training.pretrain_vla import pretrain_vla

    labeller = vla_data.lam_labeller(args.lam, device=args.device, feature_cache=args.feature_cache)
    result = pretrain_vla(
        args.dataset,
        args.out,
        labeller,
        backbone=args.backbone,
        cameras=split_cameras(args.cameras),
        frame_gap=args.frame_gap,
        robot=args.robot,
        lora=LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha) if args.lora_rank > 0 else None,
        settings=training_settings(args),
        resume=args.resume,
    )
    if is_main_process():
        print(json.dumps(result, indent=1))
    return 0
