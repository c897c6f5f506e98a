"""Make a dataset readable again after the recorder was killed (SIGKILL, power loss).

Rolls the folder back to its last committed episode: restores the metadata
snapshot, deletes the half-written episode and lerobot's temporary files.
Every episode saved before the kill is kept. Safe to run twice; --resume on
the recorders does this automatically.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="dataset folder written by record-sim, bag2lerobot or the recorder node")
    parser.add_argument("--check", action="store_true", help="also load the dataset with lerobot afterwards")


def run(args) -> int:
    from lam_ros.recording.writer import load_dataset, recover

    result = recover(args.dir)
    print(f"{args.dir}: {result.summary()}")
    if args.check and result.committed_episodes:
        ds = load_dataset(args.dir)
        print(f"loaded with lerobot: {ds.num_episodes} episodes, {len(ds)} frames")
    return 0
