"""Shared builders for the LAM tests: tiny model configs, a tiny DINOv2, a tiny multi-view LeRobot dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_config(**overrides):
    from models.lam import LAMConfig, objective_weights

    objective = overrides.pop("objective", "mvp")
    kw = dict(image_size=32, patch_size=8, hidden_dim=32, num_heads=2, encoder_depth=1, decoder_depth=1,
              code_dim=16, num_codes=8, num_tokens=2, objective=objective,
              loss_weights=objective_weights(objective))
    kw.update(overrides)
    return LAMConfig(**kw)


def save_tiny_dinov2(directory: Path) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                       image_size=64, patch_size=16)
    Dinov2Model(cfg).save_pretrained(directory)
    return directory


def moving_square(size: int, x: float, y: float, color, offset: int = 0) -> np.ndarray:
    """A frame with a square whose position follows the state (shifted per camera by ``offset``)."""
    img = np.full((size, size, 3), 40, np.uint8)
    cx, cy = int(x + offset) % (size - 6), int(y) % (size - 6)
    img[cy:cy + 6, cx:cx + 6] = color
    return img


def make_multiview_dataset(root: Path, views=("cam_a", "cam_b"), episodes: int = 2, length: int = 12,
                           size: int = 32, fps: int = 5, nan_action: bool = False, seed: int = 0) -> Path:
    """Write a tiny LeRobot v3.0 dataset with a square moved by the 7-D action, seen from shifted cameras."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rng = np.random.default_rng(seed)
    features = {f"observation.images.{v}": {"dtype": "video", "shape": (size, size, 3),
                                            "names": ["height", "width", "channels"]} for v in views}
    features["observation.state"] = {"dtype": "float32", "shape": (7,), "names": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]}
    features["action"] = {"dtype": "float32", "shape": (7,), "names": ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]}
    ds = LeRobotDataset.create("test/lam_tiny", fps, features, root=root, robot_type="sim", use_videos=True,
                               vcodec="h264")
    for _ in range(episodes):
        state = np.zeros(7, np.float32)
        state[:2] = rng.uniform(2, size - 10, 2)
        for _t in range(length):
            action = np.zeros(7, np.float32)
            action[:2] = rng.integers(-2, 3, 2)
            action[6] = float(rng.integers(0, 2))
            frame = {f"observation.images.{v}": moving_square(size, state[0], state[1], (200, 50 + 60 * i, 90), 3 * i)
                     for i, v in enumerate(views)}
            frame["observation.state"] = state.copy()
            frame["action"] = action.copy()
            if nan_action:
                frame["action"][0] = np.nan
            frame["task"] = "move the square"
            ds.add_frame(frame)
            state = state + action
            state[6] = action[6]
        ds.save_episode()
    ds.finalize()
    return root
