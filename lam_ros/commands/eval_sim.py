"""Closed-loop evaluation of VLA checkpoints in the MuJoCo simulator (SIMPLER
protocol: success judged at the final step, plus grasp rates), with the scripted
expert as the upper reference. Every agent runs the same seeds. Writes
results.json, results.md (success / grasp table) and multi-view rollout videos.

Example: lam-ros eval-sim --checkpoint runs/vla --baseline scratch=runs/vla_scratch
--robot widowx --tasks all --episodes 24 --out runs/eval
"""

from __future__ import annotations


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="policy checkpoint (reported under --name): a finetuned VLA, a LeRobot ACT / Diffusion "
                             "directory (lam-ros train-lerobot) or a privileged-state baseline; 'expert': the scripted "
                             "expert alone")
    parser.add_argument("--name", default="policy", help="the --checkpoint agent's name in the table (default: policy)")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=DIR",
                        help="another checkpoint to evaluate on the same seeds (repeatable)")
    parser.add_argument("--robot", default="widowx", help="widowx or piper (default widowx)")
    parser.add_argument("--tasks", default="all", help="'all' or comma-separated task names")
    parser.add_argument("--episodes", type=int, default=24, help="episodes per task (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="first episode seed; episode i uses seed + i")
    from lam_ros.commands.record_sim import add_layout_arg

    add_layout_arg(parser)
    parser.add_argument("--no-expert", action="store_true", help="skip the scripted expert reference")
    parser.add_argument("--image-size", type=int, default=None,
                        help="square render size (default: the resolution the checkpoint's training data was recorded "
                             "at; each policy resizes frames to its own input size)")
    add_executor_args(parser)
    parser.add_argument("--videos", type=int, default=1, help="episodes per agent and task saved as video (default 1)")
    parser.add_argument("--max-steps", type=int, help="cap episode length (debugging; default: the task's length)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frame-codec", default="auto",
                        help="how VLA and LeRobot policies see camera frames: 'auto' (default) through the video codec their training "
                             "frames were stored with (the checkpoint records it), 'off' raw renders, or a codec name to "
                             "force (e.g. h264, for checkpoints saved before the field existed)")
    parser.add_argument("--out", default="eval_sim", help="output directory (default ./eval_sim)")


def add_executor_args(parser) -> None:
    """Chunk-execution knobs shared by eval-sim and run (lam_ros.policy.ChunkExecutor)."""
    g = parser.add_argument_group("chunk execution")
    g.add_argument("--ensemble-decay", type=float, default=0.1,
                   help="temporal-ensembling weight decay over overlapping chunks, oldest first (default 0.1)")
    g.add_argument("--replan-every", type=int, default=1, help="predict a new chunk every N control steps (default 1)")
    g.add_argument("--sticky-gripper", type=int, default=0, metavar="STEPS",
                   help="hold a changed gripper command for STEPS control steps (SIMPLER style; default 0 = off)")


def executor_settings(args) -> dict:
    return {"ensemble_decay": args.ensemble_decay, "replan_every": args.replan_every,
            "sticky_gripper": args.sticky_gripper}


def run(args) -> int:
    from training.eval_sim import EXPERT, evaluate

    if args.checkpoint == EXPERT:  # the scripted expert alone (e.g. in its own process beside the policies')
        agents = {EXPERT: EXPERT}
    elif not args.name or args.name == EXPERT:
        raise ValueError(f"--name must be a non-empty name other than {EXPERT!r}, got {args.name!r}")
    else:
        agents = {args.name: args.checkpoint}
    for spec in args.baseline:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--baseline must be NAME=DIR, got {spec!r}")
        if name in agents or name == EXPERT:
            raise ValueError(f"--baseline name {name!r} is taken")
        agents[name] = path
    if not args.no_expert:
        agents.setdefault(EXPERT, EXPERT)
    tasks = None if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    results = evaluate(
        agents,
        args.out,
        robot=args.robot,
        tasks=tasks,
        episodes=args.episodes,
        seed=args.seed,
        layout=args.layout,
        image_size=args.image_size,
        executor=executor_settings(args),
        video_episodes=args.videos,
        max_steps=args.max_steps,
        device=args.device,
        frame_codec=args.frame_codec,
    )
    from training.eval_sim import markdown_table

    print(markdown_table(results))
    return 0
