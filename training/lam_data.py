"""Multi-view LeRobot (v3.0) data for latent action models: episodes in memory, (t, t+k) pairs and triples.

Frames are decoded once per video file with PyAV (one sequential pass, scaled by
swscale to the model's small resolution) and kept in memory as uint8. Reading
through ``LeRobotDataset.__getitem__`` instead would seek and decode from the
previous keyframe for every sample and view, which on a 2-core CPU costs far more
than the model step; at 64x64 a 100-episode x 60-frame x 3-view set is ~220 MB.
LeRobotDataset still provides the metadata, episode boundaries and parquet columns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
IMAGE_PREFIX = "observation.images."


@dataclass
class Episode:
    dataset: str
    index: int
    fps: int
    frames: dict[str, np.ndarray]  # view -> uint8 (T, S, S, 3)
    actions: np.ndarray  # (T, action_dim)
    states: np.ndarray  # (T, state_dim)

    def __len__(self) -> int:
        return len(self.actions)


def parse_frame_gap(gap: str | int | float, fps: int) -> int:
    """``"0.6s"`` -> round(0.6 * fps) steps (at least 1); ``"3"`` or 3 -> 3 steps."""
    text = str(gap).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*s", text)
    if m:
        steps = max(1, int(round(float(m.group(1)) * fps)))
    elif re.fullmatch(r"[0-9]+", text):
        steps = int(text)
    else:
        raise ValueError(f"frame gap must be seconds like '0.6s' or a step count like '3', got {gap!r}")
    if steps < 1:
        raise ValueError(f"frame gap must be at least one step, got {gap!r}")
    return steps


def view_keys(available: list[str], views: list[str], dataset: str) -> dict[str, str]:
    """Map view names (``cam_a`` or ``observation.images.cam_a``) to the dataset's video keys."""
    if not views:
        raise ValueError("no views given (e.g. --views third_person,side)")
    out = {}
    for v in views:
        key = v if v.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + v
        if key not in available:
            names = [k[len(IMAGE_PREFIX):] for k in available]
            raise ValueError(f"view {v!r} is not in dataset {dataset}; its cameras are {names}")
        out[v.removeprefix(IMAGE_PREFIX)] = key
    return out


def _decode_file(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode a video at its recorded resolution, then resize through the project's one
    image path (``models.image_prep``), exactly as the runtimes resize camera frames."""
    import av

    from models.image_prep import resize_images

    times, images = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            images.append(frame.to_ndarray(format="rgb24"))
    return np.asarray(times), resize_images(np.stack(images), size, name=str(path))


def load_episodes(roots: list[str | Path], views: list[str], image_size: int,
                  episodes: list[int] | None = None) -> list[Episode]:
    """Load every (or the listed) episode of each dataset root with the given views."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    out: list[Episode] = []
    for root in roots:
        root = Path(root)
        if not (root / "meta" / "info.json").is_file():
            raise FileNotFoundError(f"no LeRobot dataset at {root} (missing meta/info.json)")
        ds = LeRobotDataset(root.name, root=root, video_backend="pyav")
        keys = view_keys(list(ds.meta.video_keys), views, str(root))
        for col in ("action", "observation.state"):
            if col not in ds.meta.features:
                raise ValueError(f"dataset {root} has no {col!r} feature")
        hf = ds.hf_dataset.with_format("numpy")
        ep_col = np.asarray(hf["episode_index"])
        actions_all = np.stack(hf["action"]).astype(np.float32)
        states_all = np.stack(hf["observation.state"]).astype(np.float32)
        wanted = range(ds.meta.total_episodes) if episodes is None else episodes
        cache: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        for ep in tqdm(list(wanted), desc=f"decode {root.name}", leave=False):
            meta = ds.meta.episodes[ep]
            rows = np.nonzero(ep_col == ep)[0]
            length = int(meta["length"])
            acts, states = actions_all[rows], states_all[rows]
            for name, arr in (("action", acts), ("observation.state", states)):
                if not np.isfinite(arr).all():
                    bad = int(np.argwhere(~np.isfinite(arr))[0][0])
                    raise ValueError(f"dataset {root} episode {ep} frame {bad}: {name} contains NaN/inf")
            frames = {}
            for view, key in keys.items():
                path = ds.root / ds.meta.get_video_file_path(ep, key)
                if path not in cache:
                    cache[path] = _decode_file(path, image_size)
                times, images = cache[path]
                want = float(meta[f"videos/{key}/from_timestamp"]) + np.arange(length) / ds.fps
                idx = np.abs(times[None, :] - want[:, None]).argmin(1)
                if np.abs(times[idx] - want).max() > 0.5 / ds.fps:
                    raise ValueError(f"dataset {root} episode {ep}: video {key} lacks frames for some timestamps")
                frames[view] = images[idx]
            out.append(Episode(str(root), int(ep), int(ds.fps), frames, acts, states))
    return out


def split_episodes(episodes: list[Episode], holdout_frac: float) -> tuple[list[Episode], list[Episode]]:
    """(train, held-out): the last floor(frac * n) episodes of each dataset are held out."""
    train, held = [], []
    for ds in dict.fromkeys(e.dataset for e in episodes):
        eps = [e for e in episodes if e.dataset == ds]
        n_hold = int(holdout_frac * len(eps))
        train += eps[: len(eps) - n_hold]
        held += eps[len(eps) - n_hold:]
    return train, held


class TransitionDataset(torch.utils.data.Dataset):
    """(t, t+k) pairs, or (t, t+k, t+2k) triples, of synchronized multi-view frames.

    Item: ``frames`` uint8 (V, T, S, S, 3), ``actions`` (k, A) from t to t+k-1,
    ``state_delta`` (state_dim,) between t and t+k.
    """

    def __init__(self, episodes: list[Episode], views: list[str], gap: int, triples: bool = False):
        if not episodes:
            raise ValueError("no episodes to sample transitions from")
        self.episodes, self.views, self.gap = episodes, [v.removeprefix(IMAGE_PREFIX) for v in views], gap
        span = gap * (2 if triples else 1)
        self.num_frames = 3 if triples else 2
        self.index = [(i, t) for i, ep in enumerate(episodes) for t in range(len(ep) - span)]
        if not self.index:
            longest = max(len(e) for e in episodes)
            fps = episodes[0].fps
            raise ValueError(
                f"frame gap of {gap} steps ({gap / fps:.2f} s{' x2 for triples' if triples else ''}) is longer than "
                f"every episode (longest: {longest} frames = {longest / fps:.2f} s)"
            )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, t = self.index[i]
        ep = self.episodes[e]
        ts = [t + j * self.gap for j in range(self.num_frames)]
        frames = np.stack([ep.frames[v][ts] for v in self.views])
        return {
            "frames": torch.from_numpy(frames),
            "actions": torch.from_numpy(ep.actions[t: t + self.gap]),
            "state_delta": torch.from_numpy(ep.states[t + self.gap] - ep.states[t]),
        }
