"""Stage 2 of the VLA: LoRA (peft) on the backbone plus the action-chunk decoder,
trained with L1 on normalised 7-D end-effector actions of action-labelled LeRobot
episodes. `--init` is a `lam-ros pretrain-vla` checkpoint (latent-pretrained
policy) or a bare backbone ('tiny', 'tiny-effnet' or a hub id: the from-scratch baseline).

Action normalisation statistics (1st..99th percentile) come from these episodes
and are saved with the checkpoint, which `lam_ros.policy.Policy.load` reads.
"""

from __future__ import annotations

import json

from lam_ros.cli import is_main_process
from lam_ros.commands.pretrain_vla import add_training_args, split_cameras, training_settings


def configure(parser) -> None:
    parser.add_argument("--dataset", nargs="+", required=True, help="local LeRobot dataset directories with an 'action' feature")
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--init", default="tiny",
                        help="stage-1 checkpoint, or a backbone for the from-scratch baseline: 'tiny', 'tiny-effnet' "
                             "(frozen ImageNet EfficientNet-Lite0 vision trunk; stays frozen with --finetune full too), "
                             "'tiny-effnet-pool2' (the same trunk, 16 instead of 64 tokens per camera), "
                             "a hub id or a path")
    parser.add_argument("--cameras", help="comma-separated cameras when --init is a bare backbone (default: all shared)")
    parser.add_argument("--chunk-size", type=int, default=5, help="actions per predicted chunk (default 5, SIMPLER)")
    parser.add_argument("--robot", help="robot stored in the checkpoint (default: the dataset's robot_type)")
    parser.add_argument("--max-episodes", type=int, help="use only the first N labelled episodes of each dataset")
    parser.add_argument("--lora-rank", type=int, default=32, help="LoRA rank (default 32)")
    parser.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default 16)")
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--lam", help="optional LAM checkpoint: adds the latent-token cross-entropy to the L1 loss")
    parser.add_argument("--latent-loss-weight", type=float, default=1.0,
                        help="weight of that latent-token cross-entropy beside the L1 loss (default 1.0; with the "
                             "tiny backbone the cross-entropy, about 1.2 nats against an L1 of 0.1, took over the shared "
                             "weights: docs/policy_ladder.md, session 8)")
    parser.add_argument("--frame-gap", type=int, default=3, help="LAM frame gap when --lam is given")
    parser.add_argument("--device", default="cpu", help="device for the LAM labeller")
    parser.add_argument("--use-state", action="store_true",
                        help="feed the robot state (observation.state: EE pose + gripper) to the action decoder")
    parser.add_argument("--action-loss", choices=["l1", "mse"], default="l1", help="loss on normalised action chunks (default l1)")
    parser.add_argument("--finetune", choices=["lora", "full"], default="lora",
                        help="train LoRA adapters (default) or the whole backbone, plus the heads")
    parser.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS",
                        help="random-shift image augmentation, in pixels at the model's input size (default 0: off)")
    parser.add_argument("--augment-feature-shift", type=float, default=0.0, metavar="CELLS",
                        help="random shift of the frozen trunk's feature maps, up to CELLS feature cells (e.g. 0.5: "
                             "half a 16 px cell); keeps the feature cache, unlike --augment-shift. Needs a pretrained "
                             "trunk (--init tiny-effnet or a stage-1 checkpoint built on one); default 0: off")
    parser.add_argument("--min-episodes", type=int, help="refuse to train on fewer labelled episodes than this")
    parser.add_argument("--keep-noops", action="store_true",
                        help="also train on frames whose action is a no-op (zero arm motion, unchanged gripper); "
                             "dropped by default, as OpenVLA does for Bridge")
    add_training_args(parser)


def run(args) -> int:
    from models.vla import LoraSettings
    from training import vla_data
    from training.finetune_vla import finetune_vla

    if args.augment_shift < 0:
        raise ValueError(f"--augment-shift must be >= 0 pixels, got {args.augment_shift}")
    if not args.augment_feature_shift >= 0:
        raise ValueError(f"--augment-feature-shift must be >= 0 cells, got {args.augment_feature_shift}")
    if not args.latent_loss_weight >= 0:
        raise ValueError(f"--latent-loss-weight must be >= 0, got {args.latent_loss_weight}")
    if args.lora_rank < 1:
        raise ValueError(f"--lora-rank must be >= 1, got {args.lora_rank}")
    labeller = vla_data.lam_labeller(args.lam, device=args.device, feature_cache=args.feature_cache) if args.lam else None
    result = finetune_vla(
        args.dataset,
        args.out,
        init=args.init,
        cameras=split_cameras(args.cameras),
        chunk_size=args.chunk_size,
        robot=args.robot,
        max_episodes=args.max_episodes,
        lora=LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout),
        labeller=labeller,
        frame_gap=args.frame_gap,
        latent_loss_weight=args.latent_loss_weight,
        drop_noops=not args.keep_noops,
        use_state=args.use_state,
        action_loss=args.action_loss,
        finetune=args.finetune,
        augment_shift=args.augment_shift,
        augment_feature_shift=args.augment_feature_shift,
        min_episodes=args.min_episodes,
        settings=training_settings(args),
        resume=args.resume,
    )
    if is_main_process():
        print(json.dumps(result, indent=1))
    return 0
