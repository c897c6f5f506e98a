"""Shared helpers for the VLA tests: tiny checkpoints, fake images and labellers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CAMERAS = ("third_person", "wrist")


def fake_images(seed: int = 0, cameras=CAMERAS, size: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in cameras}


def fake_actions(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.02, (n, 7)).astype(np.float32)
    a[:, 6] = rng.integers(0, 2, n)
    return a


def make_action_checkpoint(directory: Path, robot: str = "widowx", chunk_size: int = 5, lora: bool = True) -> Path:
    """A randomly initialised stage-2 checkpoint (tiny backbone, LoRA, fitted stats)."""
    import torch

    from models.vla import VLA, ActionNormalizer, LoraSettings, VLAConfig

    torch.manual_seed(0)
    model = VLA.create(VLAConfig(cameras=list(CAMERAS), robot=robot, chunk_size=chunk_size, stage="action"))
    model.normalizer = ActionNormalizer.fit(fake_actions())
    if lora:
        model.apply_lora(LoraSettings(rank=4, alpha=8))
    return model.save(directory)


def fake_labeller(frames_t: dict, frames_tk: dict) -> np.ndarray:
    """Deterministic stand-in for the LAM: codes from the mean brightness change."""
    views = sorted(frames_t)
    diff = np.stack([frames_tk[v].astype(np.float32).mean((1, 2, 3)) - frames_t[v].astype(np.float32).mean((1, 2, 3)) for v in views]).mean(0)
    base = (np.abs(diff).astype(np.int64) % 16)
    return np.stack([base, (base + 1) % 16, (base * 3) % 16, np.full_like(base, 7)], axis=1).astype(np.int64)


def make_tiny_dataset(root: Path, episodes: int = 2, frames: int = 6, cameras=CAMERAS, size: int = 32, robot: str = "widowx", seed: int = 0) -> Path:
    """A tiny multi-view LeRobot dataset (videos, 7-D state and action) for tests."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {f"observation.images.{c}": {"dtype": "video", "shape": (size, size, 3), "names": ["height", "width", "channels"]} for c in cameras}
    features["observation.state"] = {"dtype": "float32", "shape": (7,), "names": [f"s{i}" for i in range(7)]}
    features["action"] = {"dtype": "float32", "shape": (7,), "names": ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]}
    ds = LeRobotDataset.create(root.name, fps=5, features=features, root=root, robot_type=robot, use_videos=True, vcodec="h264")
    rng = np.random.default_rng(seed)
    tasks = ["put the carrot on the plate", "stack the green cube on the yellow block"]
    for ep in range(episodes):
        for t in range(frames):
            frame = {f"observation.images.{c}": np.full((size, size, 3), (40 * t + 60 * k + 20 * ep) % 256, np.uint8) for k, c in enumerate(cameras)}
            frame["observation.state"] = rng.normal(size=7).astype(np.float32)
            action = np.full(7, 0.01 * (t - frames / 2), np.float32)
            action[6] = float(t < frames // 2)
            frame["action"] = action
            frame["task"] = tasks[ep % len(tasks)]
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
    return root
