"""Data for VLA training: LeRobot episodes in memory, latent-code labelling with a
LAM, a torch Dataset of (images, instruction, action chunk, codes) samples, and
loss-curve plots.

Episodes are decoded once per camera and episode (one sequential video decode is
far cheaper than a seek per frame) and kept in memory as uint8: the sim datasets
this project trains on are a few thousand frames. Larger datasets need a streaming
variant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)

IMAGE_PREFIX = "observation.images."
Labeller = Callable[[dict, dict], np.ndarray]


@dataclass
class EpisodeData:
    """All frames of one or more LeRobot datasets, concatenated."""

    images: dict[str, np.ndarray]  # camera -> uint8 (N, H, W, 3)
    tasks: list[str]  # (N,) instruction per frame
    episode: np.ndarray  # (N,) globally unique episode id
    actions: np.ndarray | None  # (N, D) float32 or None
    robot_type: str | None
    fps: int
    states: np.ndarray | None = None  # (N, 7) observation.state [x, y, z, roll, pitch, yaw, gripper]
    env_states: np.ndarray | None = None  # (N, E) observation.environment_state (object poses), sim only
    action_convention: str | None = None  # lam_ros.action_convention, when the data has actions
    source_image_size: tuple[int, int] | None = None  # (height, width) the videos were recorded at
    # the video codec every camera frame went through when recorded (meta/info.json "video.codec"); None: lossless images
    frame_codec: str | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def cameras(self) -> list[str]:
        return list(self.images)

    def episode_end(self) -> np.ndarray:
        """(N,) index one past the last frame of each frame's episode."""
        return episode_ends(self.episode)


def episode_ends(episode: np.ndarray) -> np.ndarray:
    """(N,) index one past the last frame of each frame's episode (episodes stored contiguously)."""
    episode = np.asarray(episode)
    ends = np.empty(len(episode), dtype=np.int64)
    boundaries = np.flatnonzero(np.diff(episode)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(episode)]])
    for s, e in zip(starts, stops):
        ends[s:e] = e
    return ends


def chunk_indices(start, end, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of the action chunk starting at ``start`` (scalar or (N,)), clamped to the
    episode's last frame (``end`` is one past it), and the mask of steps inside the episode."""
    start, end = np.asarray(start)[..., None], np.asarray(end)[..., None]
    idx = start + np.arange(chunk)
    mask = idx < end
    return np.minimum(idx, end - 1), mask


def open_lerobot(root: str | Path):
    """Open a local LeRobot dataset offline (never falls back to the hub)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    if not (root / "meta" / "info.json").exists():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset (meta/info.json missing)")
    return LeRobotDataset(root.name, root=root, video_backend="pyav")


def load_episodes(
    roots: list[str | Path] | str | Path,
    cameras: list[str] | None = None,
    require_actions: bool = False,
    max_episodes: int | None = None,
    image_size: int | None = None,
    min_episodes: int | None = None,
) -> EpisodeData:
    """Decode LeRobot datasets into memory. ``cameras`` defaults to the cameras common
    to all datasets; ``max_episodes`` keeps the first N episodes of each dataset (a per-task
    label budget when each dataset holds one task);
    ``image_size`` resizes every frame once through ``models.image_prep`` (the
    path the runtime uses too); fewer than ``min_episodes`` episodes is an error."""
    from lerobot.datasets.video_utils import decode_video_frames

    from lam_ros.action_convention import check_same_convention, dataset_convention
    from lam_ros.recording.codec import recorded_codec
    from models.image_prep import resize_images

    if isinstance(roots, (str, Path)):
        roots = [roots]
    if not roots:
        raise ValueError("no dataset given")
    datasets = [open_lerobot(r) for r in roots]
    available = [
        {k[len(IMAGE_PREFIX):] for k in ds.meta.video_keys + ds.meta.image_keys if k.startswith(IMAGE_PREFIX)}
        for ds in datasets
    ]
    if cameras is None:
        common = set.intersection(*available)
        cameras = sorted(common)
    for root, have in zip(roots, available):
        missing = [c for c in cameras if c not in have]
        if missing:
            raise ValueError(f"dataset {root} lacks camera(s) {missing}; it has {sorted(have)}")
    if not cameras:
        raise ValueError(f"datasets {roots} share no camera")

    images: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    tasks: list[str] = []
    episode_ids: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    has_actions = all("action" in ds.meta.features for ds in datasets)
    if require_actions and not has_actions:
        lacking = [str(r) for r, ds in zip(roots, datasets) if "action" not in ds.meta.features]
        raise ValueError(f"dataset(s) {lacking} have no 'action' feature: action finetuning needs action-labelled episodes")
    convention = check_same_convention({str(r): dataset_convention(r) for r in roots}) if has_actions else None
    has_state = all("observation.state" in ds.meta.features for ds in datasets)
    has_env = all("observation.environment_state" in ds.meta.features for ds in datasets)
    states: list[np.ndarray] = []
    env_states: list[np.ndarray] = []
    shapes = {tuple(ds.meta.features[IMAGE_PREFIX + c]["shape"][:2]) for ds in datasets for c in cameras}
    codecs = {recorded_codec(ds.meta, IMAGE_PREFIX + c) for ds in datasets for c in cameras}
    next_episode = 0
    for ds in datasets:
        ds._ensure_hf_dataset_loaded()
        hf = ds.hf_dataset
        ep_col = np.asarray(torch.stack(list(hf["episode_index"])).numpy()).reshape(-1)
        ts_col = np.asarray(torch.stack(list(hf["timestamp"])).numpy()).reshape(-1)
        task_idx = np.asarray(torch.stack(list(hf["task_index"])).numpy()).reshape(-1)
        act_col = torch.stack(list(hf["action"])).numpy().astype(np.float32) if has_actions else None
        state_col = torch.stack(list(hf["observation.state"])).numpy().astype(np.float32) if has_state else None
        env_col = (torch.stack(list(hf["observation.environment_state"])).numpy().astype(np.float32)
                   if has_env else None)
        task_names = {int(i): name for name, i in zip(ds.meta.tasks.index, ds.meta.tasks["task_index"])}
        for ep in np.unique(ep_col)[:max_episodes]:  # the first N of this dataset (all for None)
            rows = np.flatnonzero(ep_col == ep)
            meta = ds.meta.episodes[int(ep)]
            for cam in cameras:
                key = IMAGE_PREFIX + cam
                if key in ds.meta.video_keys:
                    start = meta[f"videos/{key}/from_timestamp"]
                    path = ds.root / ds.meta.get_video_file_path(int(ep), key)
                    frames = decode_video_frames(path, [start + float(t) for t in ts_col[rows]], ds.tolerance_s, "pyav")
                    frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
                else:  # image (PNG) features, rare
                    frames = np.stack([(ds[int(r)][key].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for r in rows])
                if image_size is not None:
                    frames = resize_images(frames, image_size, name=f"{ds.root} camera {cam!r}")
                images[cam].append(frames)
            tasks.extend(task_names[int(i)] for i in task_idx[rows])
            episode_ids.append(np.full(len(rows), next_episode))
            if act_col is not None:
                actions.append(act_col[rows])
            if state_col is not None:
                states.append(state_col[rows])
            if env_col is not None:
                env_states.append(env_col[rows])
            next_episode += 1
    if min_episodes is not None and next_episode < min_episodes:
        raise ValueError(f"datasets {[str(r) for r in roots]} hold {next_episode} episode(s), fewer than the "
                         f"{min_episodes} requested")
    if has_actions:
        bad = [i for i, a in enumerate(actions) if not np.isfinite(a).all()]
        if bad:
            raise ValueError(f"datasets {[str(r) for r in roots]}: episode(s) {bad} have NaN/inf actions")
    robot_types = {ds.meta.robot_type for ds in datasets}
    return EpisodeData(
        images={c: np.concatenate(v) for c, v in images.items()},
        tasks=tasks,
        episode=np.concatenate(episode_ids),
        actions=np.concatenate(actions) if has_actions else None,
        robot_type=robot_types.pop() if len(robot_types) == 1 else None,
        fps=int(datasets[0].fps),
        states=np.concatenate(states) if has_state else None,
        env_states=np.concatenate(env_states) if has_env else None,
        action_convention=convention,
        source_image_size=shapes.pop() if len(shapes) == 1 else None,
        frame_codec=codecs.pop() if len(codecs) == 1 else None,
    )


def label_latent_codes(data: EpisodeData, labeller: Labeller, frame_gap: int = 3, batch_size: int = 32) -> np.ndarray:
    """Pseudo-label every frame t with the LAM's codes for the transition t -> t+k
    (k clamped to the episode's last frame). Returns int64 (N, num_tokens)."""
    if frame_gap < 1:
        raise ValueError(f"frame_gap must be >= 1, got {frame_gap}")
    n = len(data)
    target = np.minimum(np.arange(n) + frame_gap, data.episode_end() - 1)
    codes = []
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        frames_t = {c: data.images[c][idx] for c in data.cameras}
        frames_tk = {c: data.images[c][target[idx]] for c in data.cameras}
        out = np.asarray(labeller(frames_t, frames_tk))
        if out.ndim != 2 or out.shape[0] != len(idx):
            raise ValueError(f"labeller returned shape {out.shape}, expected ({len(idx)}, num_tokens)")
        codes.append(out.astype(np.int64))
    return np.concatenate(codes)


def lam_labeller(checkpoint: str | Path, device: str = "cpu", feature_cache: str | Path | None = None) -> Labeller:
    """The trained LAM (``lam_ros.latent_actions.LatentActionRuntime``) as a labeller;
    frames are resized to the LAM's input size when they differ.

    Only the cameras the LAM was trained on label (its ``views``; with several, their latents are
    averaged): a policy camera the LAM never saw (e.g. the wrist view, when the LAM learned from
    third_person and side) would mix an out-of-distribution latent into every label. A LAM without
    recorded views labels from every camera given.

    A LAM on the frozen trunk's features (``effnet``) memoises them per frame while it labels (each frame
    is the start of one transition and the end of another) and first reads ``feature_cache``, the VLA's
    feature file: the trunk and its preprocessing are the VLA's, so the keys match and no frame is recomputed."""
    from lam_ros.latent_actions import LatentActionRuntime

    if not Path(checkpoint).exists():
        raise FileNotFoundError(f"LAM checkpoint {checkpoint} does not exist")
    from models.image_prep import resize_views

    runtime = LatentActionRuntime.from_checkpoint(checkpoint, device=device)
    observer = runtime.model.observer
    if hasattr(observer, "cache_features"):
        observer.cache_features(from_file=feature_cache)
    size = int(runtime.image_size)
    trained = list(getattr(runtime.config, "views", None) or [])

    def label(frames_t, frames_tk):
        views = [v for v in trained if v in frames_t] if trained else list(frames_t)
        if not views:
            raise ValueError(f"the LAM {checkpoint} was trained on views {trained}; the frames have only "
                             f"{sorted(frames_t)}: label with a dataset that has one of its views")
        codes, _ = runtime.infer(resize_views({v: frames_t[v] for v in views}, size),
                                 resize_views({v: frames_tk[v] for v in views}, size))
        return np.asarray(codes)

    return label


def noop_frames(actions: np.ndarray, episode: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Frames whose arm action is zero and whose gripper command repeats the previous frame's.

    Scripted and teleoperated episodes hold still for long stretches (our expert
    idles for ~60% of a SIMPLER episode after finishing); regressing on those
    pulls the policy to "no motion". OpenVLA drops such no-op actions from
    Bridge for the same reason.
    """
    arm_still = np.all(np.abs(actions[:, :6]) < eps, axis=1)
    first = np.r_[True, episode[1:] != episode[:-1]]
    same_gripper = np.r_[False, actions[1:, 6] == actions[:-1, 6]] & ~first
    return arm_still & same_gripper


class VLAFrames(torch.utils.data.Dataset):
    """Frame t -> images at t, instruction, normalised action chunk t..t+L-1 with a
    mask of steps inside the episode, and the latent codes (if labelled).

    ``drop_noops`` leaves frames whose action is a no-op (:func:`noop_frames`)
    out as samples; they still appear inside other frames' action chunks.
    """

    def __init__(self, data: EpisodeData, cameras: list[str], chunk_size: int, normalizer=None, codes: np.ndarray | None = None,
                 drop_noops: bool = False, state_normalizer=None):
        missing = [c for c in cameras if c not in data.images]
        if missing:
            raise ValueError(f"the data lacks camera(s) {missing}; it has {data.cameras}")
        self.data = data
        self.cameras = cameras
        self.chunk_size = chunk_size
        self.codes = codes
        self.ends = data.episode_end()
        self.normed = normalizer.normalize(data.actions) if (normalizer is not None and data.actions is not None) else None
        self.states = None
        if state_normalizer is not None:
            if data.states is None:
                raise ValueError("the model takes the robot state but the datasets have no 'observation.state'")
            self.states = state_normalizer.normalize(data.states)
        self.indices = np.arange(len(data))
        if drop_noops:
            if data.actions is None:
                raise ValueError("drop_noops needs action-labelled data")
            # Never empty: an episode's first frame has no previous command to repeat.
            self.indices = np.flatnonzero(~noop_frames(data.actions, data.episode))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict:
        i = int(self.indices[k])
        item = {
            "images": {c: self.data.images[c][i] for c in self.cameras},
            "instruction": self.data.tasks[i],
        }
        if self.normed is not None:
            idx, mask = chunk_indices(i, self.ends[i], self.chunk_size)
            item["actions"] = torch.from_numpy(self.normed[idx])
            item["action_mask"] = torch.from_numpy(mask.astype(np.float32))
        if self.codes is not None:
            item["codes"] = torch.from_numpy(self.codes[i])
        if self.states is not None:
            item["state"] = torch.from_numpy(self.states[i])
        return item


def random_shift(image: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """DrQ-style augmentation: pad by ``pad`` pixels (edge replicate) and crop back at a random offset."""
    if pad <= 0:
        return image
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    dy, dx = rng.integers(0, 2 * pad + 1, size=2)
    return padded[dy:dy + h, dx:dx + w]


def make_collate(model, augment_shift: int = 0, seed: int = 0) -> Callable[[list[dict]], dict]:
    """Batch samples through the model's processor (random-shift augmentation when ``augment_shift`` > 0)."""
    rng = np.random.default_rng(seed)

    def collate(items: list[dict]) -> dict:
        images = [it["images"] for it in items]
        if augment_shift > 0:
            images = [{c: random_shift(img, augment_shift, rng) for c, img in sample.items()} for sample in images]
        batch = {"inputs": model.prepare_inputs(images, [it["instruction"] for it in items])}
        for key in ("actions", "action_mask", "codes", "state"):
            if key in items[0]:
                batch[key] = torch.stack([it[key] for it in items])
        return batch

    return collate


def plot_curves(history: dict[str, list[float]], path: str | Path, title: str) -> Path:
    """Loss curves (one line per key) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in history.items():
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
