"""Train LeRobot's own ACT or Diffusion Policy on our LeRobot datasets (ladder rung 3).

Everything model-side is lerobot's: the policy config classes (``make_policy_config``),
``make_policy``, ``make_pre_post_processors`` (normalisation statistics saved with
the policy), the policy's optimizer / scheduler presets, ``LeRobotDataset`` with
``delta_timestamps`` from the policy's ``*_delta_indices`` (``resolve_delta_timestamps``),
``EpisodeAwareSampler`` (Diffusion's ``drop_n_last_frames``), ``aggregate_stats``
for several datasets, and the training step itself (``lerobot_train.update_policy``).
The result is a standard LeRobot pretrained-policy directory (``config.json``,
``model.safetensors``, ``policy_preprocessor*`` / ``policy_postprocessor*``) plus our
``lam_ros_meta.json`` (robot, cameras, image size, action convention, names, fps),
which :class:`lam_ros.lerobot_policy.LeRobotPolicy` reads.

Why this module runs the loop instead of calling ``lerobot_train.train(cfg)``:

* lerobot 0.4.4's ``make_dataset`` raises ``NotImplementedError`` for more than one
  dataset (``MultiLeRobotDataset`` is disabled there, and it also needs every dataset
  under one root as ``root/repo_id``). We train one dataset per task together: a
  ``torch.utils.data.ConcatDataset`` of ``LeRobotDataset`` objects, normalised with
  statistics merged by lerobot's ``aggregate_stats``.
* Images go through the project's single resize function
  (``models.image_prep.resize_images``), the one :class:`LeRobotPolicy` applies at
  run time, so a policy can be trained at a size other than the recorded one.
* ``LeRobotDataset`` decodes each sample by seeking in the mp4 (pyav); on a 2-core
  CPU that, not the model, bounds training. :class:`_CachedLeRobotDataset` decodes
  each episode's video once (lerobot's ``decode_video_frames``) and keeps the uint8
  frames in memory (64x64: 12 kB a frame).
* ``train`` writes resumable training checkpoints under ``checkpoints/<step>/`` and
  wants draccus command-line parsing; we want one plain pretrained-policy directory.
* lerobot normalises actions and state with their dataset statistics as they are. The
  scripted expert's roll and pitch deltas are IK noise (about 3e-4 rad wide), which
  MEAN_STD or MIN_MAX would blow up to full-scale regression targets. The statistics
  get the floors our VLA's normaliser uses (:func:`floor_stats`, one source of truth in
  ``models.vla.normalization``) before lerobot's processors are built from them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from models.vla.normalization import TRANSLATION_FLOOR_M, default_min_range, widen_to_floor

log = logging.getLogger(__name__)

POLICY_TYPES = ("act", "diffusion")
META_FILE = "lam_ros_meta.json"
DEFAULT_CONVENTION = "bridge_delta"
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"

# CPU-sized settings ("small" preset). lerobot's defaults are sized for a GPU and for
# 640x480 ALOHA/PushT data: a 250 M-parameter U-Net for Diffusion, an 84x84 crop
# (larger than our 64x64 frames), ACT chunks of 100 steps (our episodes are 60).
SMALL_PRESETS: dict[str, dict] = {
    "act": dict(
        chunk_size=10,
        n_action_steps=1,
        temporal_ensemble_coeff=0.01,  # ACT's inference: query every step, ensemble the chunks
        dim_model=256,
        n_heads=8,
        dim_feedforward=1024,
        n_encoder_layers=4,
        n_decoder_layers=1,
        n_vae_encoder_layers=2,
        optimizer_lr=1e-4,
        optimizer_lr_backbone=1e-4,
    ),
    "diffusion": dict(
        n_obs_steps=2,
        horizon=16,
        n_action_steps=8,
        down_dims=(64, 128, 256),
        diffusion_step_embed_dim=64,
        spatial_softmax_num_keypoints=32,
        noise_scheduler_type="DDIM",
        num_train_timesteps=100,
        num_inference_steps=10,
        scheduler_warmup_steps=100,
    ),
}


def parse_image_size(text: str | int | tuple | list | None) -> tuple[int, int] | None:
    """'64' / '64x64' (WxH, as record-sim) / 64 / (h, w) -> (height, width)."""
    if text is None:
        return None
    if isinstance(text, (int, np.integer)):
        h = w = int(text)
    elif isinstance(text, (tuple, list)):
        h, w = (int(v) for v in text)
    else:
        parts = str(text).lower().split("x")
        try:
            if len(parts) == 1:
                h = w = int(parts[0])
            elif len(parts) == 2:
                w, h = int(parts[0]), int(parts[1])
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"image size must be N or WxH (e.g. 64x64), got {text!r}") from None
    if not (8 <= h <= 1024 and 8 <= w <= 1024):
        raise ValueError(f"image size must be within 8..1024 pixels a side, got {h}x{w} (HxW)")
    return h, w


def dataset_action_convention(root: str | Path) -> str:
    """``meta/info.json`` -> ``lam_ros.action_convention`` (default bridge_delta)."""
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    return str((info.get("lam_ros") or {}).get("action_convention") or DEFAULT_CONVENTION)


def _open_metadata(roots: list[Path]):
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    metas = []
    for root in roots:
        if not (root / "meta" / "info.json").exists():
            raise FileNotFoundError(f"{root}: not a LeRobot dataset (meta/info.json missing)")
        metas.append(LeRobotDatasetMetadata(root.name, root=root))
    return metas


def _check_datasets(roots: list[Path], metas, cameras: list[str] | None, robot: str | None) -> dict:
    """Everything trained together must agree; returns the shared description."""
    first = metas[0]
    for root, meta in zip(roots, metas, strict=True):
        if ACTION_KEY not in meta.features:
            raise ValueError(f"dataset {root} has no 'action' feature: it cannot train a policy")
        if STATE_KEY not in meta.features:
            raise ValueError(f"dataset {root} has no 'observation.state' feature")
        if meta.fps != first.fps:
            raise ValueError(f"datasets disagree on fps: {roots[0]} has {first.fps}, {root} has {meta.fps}")
        for key in (ACTION_KEY, STATE_KEY):
            if tuple(meta.features[key]["shape"]) != tuple(first.features[key]["shape"]):
                raise ValueError(f"datasets disagree on the shape of {key!r}: {roots[0]} vs {root}")
        if meta.robot_type != first.robot_type:
            raise ValueError(f"datasets hold different robots: {first.robot_type!r} ({roots[0]}) and {meta.robot_type!r} ({root})")
    conventions = {str(r): dataset_action_convention(r) for r in roots}
    if len(set(conventions.values())) > 1:
        raise ValueError(f"datasets hold different action conventions: {conventions}")
    shared = [k[len(IMAGE_PREFIX):] for k in first.camera_keys if all(k in m.camera_keys for m in metas)]
    if cameras is None:
        cameras = shared
    if not cameras:
        raise ValueError(f"the datasets share no camera (first has {[k[len(IMAGE_PREFIX):] for k in first.camera_keys]})")
    for root, meta in zip(roots, metas, strict=True):
        have = [k[len(IMAGE_PREFIX):] for k in meta.camera_keys]
        missing = [c for c in cameras if c not in have]
        if missing:
            raise ValueError(f"dataset {root} has no camera(s) {missing}; it has {have}")
    if robot is not None and first.robot_type and robot != first.robot_type:
        raise ValueError(f"--robot {robot!r} but the datasets were recorded on {first.robot_type!r}")
    from lam_ros.recording.codec import recorded_codec

    codecs = {recorded_codec(meta, IMAGE_PREFIX + c) for meta in metas for c in cameras}
    return {
        "cameras": list(cameras),
        "robot": robot or first.robot_type,
        "fps": int(first.fps),
        "action_convention": next(iter(conventions.values())),
        "state_names": list(first.features[STATE_KEY].get("names") or []),
        "action_names": list(first.features[ACTION_KEY].get("names") or []),
        "recorded_image_size": list(first.features[IMAGE_PREFIX + cameras[0]]["shape"][:2]),
        # the codec the training frames went through; the runtime shows the policy frames through it too
        "frame_codec": codecs.pop() if len(codecs) == 1 else None,
    }


def _cached_dataset_class():
    """Defined lazily so importing this module does not import lerobot."""
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.video_utils import decode_video_frames

    from models.image_prep import resize_images

    class _CachedLeRobotDataset(LeRobotDataset):
        """``LeRobotDataset`` whose video frames are decoded once per episode, resized
        with :func:`models.image_prep.resize_images`, and served from memory.
        Samples keep only the keys a policy trains on."""

        def __init__(self, *args, cameras: list[str], image_size: tuple[int, int], **kwargs):
            super().__init__(*args, **kwargs)
            self._wanted = {IMAGE_PREFIX + c for c in cameras}
            self._image_size = image_size
            self._frames: dict[tuple[int, str], torch.Tensor] = {}

        def _episode_frames(self, ep_idx: int, vid_key: str) -> torch.Tensor:
            cached = self._frames.get((ep_idx, vid_key))
            if cached is None:
                ep = self.meta.episodes[ep_idx]
                start = ep[f"videos/{vid_key}/from_timestamp"]
                stamps = [start + k / self.fps for k in range(int(ep["length"]))]
                path = self.root / self.meta.get_video_file_path(ep_idx, vid_key)
                frames = decode_video_frames(path, stamps, self.tolerance_s, self.video_backend)  # (T, C, H, W) float
                u8 = (frames * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                u8 = resize_images(u8, self._image_size, name=vid_key)
                cached = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).contiguous()
                self._frames[(ep_idx, vid_key)] = cached
            return cached

        def _query_videos(self, query_timestamps: dict[str, list[float]], ep_idx: int) -> dict:
            item = {}
            for vid_key, query_ts in query_timestamps.items():
                if vid_key not in self._wanted:
                    continue
                frames = self._episode_frames(ep_idx, vid_key)
                idx = [min(max(int(round(ts * self.fps)), 0), len(frames) - 1) for ts in query_ts]
                item[vid_key] = frames[idx].float().div_(255).squeeze(0)
            return item

        def __getitem__(self, idx) -> dict:
            item = super().__getitem__(idx)
            return {k: v for k, v in item.items()
                    if k in self._wanted or k in (STATE_KEY, ACTION_KEY, "task") or k.endswith("_is_pad")}

    return _CachedLeRobotDataset


# A normal distribution's 1st..99th percentile interval spans 2 x 2.326 standard deviations: a std floor of
# min_range / (2 x 2.326) gives a near-constant dim under MEAN_STD the scale our VLA's q01..q99 floor gives it.
_Q01_Q99_WIDTH_IN_STD = 2 * 2.326


def floor_stats(stats: dict, key: str, min_range) -> list[int]:
    """Widen the statistics of ``stats[key]`` so that no dimension narrower than ``min_range``
    (per dim, in the data's units) is stretched to full scale by any lerobot normalisation
    mode: min/max and the quantile pairs are widened symmetrically to the floor, std is
    raised to ``min_range / 4.65``. Returns the indices of the dims that were floored."""
    entry = stats[key]
    min_range = np.asarray(min_range, dtype=np.float64)
    floored: set[int] = set()
    for lo, hi in (("min", "max"), ("q01", "q99"), ("q10", "q90")):
        if lo in entry and hi in entry:
            low, high = np.asarray(entry[lo], dtype=np.float64), np.asarray(entry[hi], dtype=np.float64)
            floored |= {int(i) for i in np.flatnonzero(high - low < min_range)}
            entry[lo], entry[hi] = (x.astype(np.float32) for x in widen_to_floor(low, high, min_range))
    if "std" in entry:
        std = np.asarray(entry["std"], dtype=np.float64)
        std_floor = min_range / _Q01_Q99_WIDTH_IN_STD
        floored |= {int(i) for i in np.flatnonzero(std < std_floor)}
        entry["std"] = np.maximum(std, std_floor).astype(np.float32)
    return sorted(floored)


def build_policy_config(policy_type: str, *, preset: str, device: str, overrides: dict | None = None):
    """lerobot's config class for ``policy_type`` with our preset and overrides applied."""
    from lerobot.policies.factory import make_policy_config

    if policy_type not in POLICY_TYPES:
        raise ValueError(f"unknown policy {policy_type!r}; known: {', '.join(POLICY_TYPES)}")
    if preset not in ("small", "lerobot"):
        raise ValueError(f"unknown preset {preset!r}; known: small, lerobot")
    kwargs = dict(SMALL_PRESETS[policy_type]) if preset == "small" else {}
    if policy_type == "act" and preset == "lerobot":
        kwargs.update(chunk_size=50, n_action_steps=50)  # lerobot's 100 exceeds our 60-step episodes
    kwargs.update(overrides or {})
    if kwargs.get("temporal_ensemble_coeff") is not None and kwargs.get("n_action_steps", 1) != 1:
        kwargs["temporal_ensemble_coeff"] = None  # lerobot allows ensembling only with n_action_steps=1
    kwargs.update(device=device, pretrained_backbone_weights=None, push_to_hub=False)
    try:
        return make_policy_config(policy_type, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad {policy_type} policy option: {exc}") from None


def train_lerobot(
    datasets: list[str | Path],
    out_dir: str | Path,
    *,
    policy_type: str = "act",
    steps: int = 1000,
    batch_size: int = 32,
    seed: int = 0,
    cameras: list[str] | None = None,
    image_size=None,
    robot: str | None = None,
    preset: str = "small",
    policy_options: dict | None = None,
    lr: float | None = None,
    device: str = "cpu",
    num_workers: int = 0,
    log_every: int = 50,
    overwrite: bool = False,
) -> dict:
    """Train ``policy_type`` on ``datasets`` (all trained together) and save it to ``out_dir``.

    ``image_size`` (N, 'WxH' or (h, w); default: the recorded size) is what the policy
    sees; ``policy_options`` override fields of lerobot's config class; ``lr`` sets the
    optimizer preset's learning rate (ACT: backbone too). Returns a summary dict that is
    also written to ``out_dir/train_summary.json``."""
    import torch
    from accelerate import Accelerator
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.datasets.compute_stats import aggregate_stats
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.sampler import EpisodeAwareSampler
    from lerobot.datasets.utils import cycle
    from lerobot.policies.factory import make_policy, make_pre_post_processors
    from lerobot.scripts.lerobot_train import update_policy
    from lerobot.utils.logging_utils import AverageMeter, MetricsTracker
    from lerobot.utils.random_utils import set_seed

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    roots = [Path(d) for d in datasets]
    if not roots:
        raise ValueError("give at least one dataset")
    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and not overwrite:
        raise ValueError(f"{out_dir} already holds a policy (config.json); choose another --out or pass --overwrite")

    metas = _open_metadata(roots)
    info = _check_datasets(roots, metas, cameras, robot)
    cameras = info["cameras"]
    size = parse_image_size(image_size) or tuple(info["recorded_image_size"])

    cfg = build_policy_config(policy_type, preset=preset, device=device, overrides=policy_options)
    if lr is not None:
        cfg.optimizer_lr = lr
        if hasattr(cfg, "optimizer_lr_backbone"):
            cfg.optimizer_lr_backbone = lr
    state_shape = tuple(metas[0].features[STATE_KEY]["shape"])
    action_shape = tuple(metas[0].features[ACTION_KEY]["shape"])
    cfg.input_features = {IMAGE_PREFIX + c: PolicyFeature(type=FeatureType.VISUAL, shape=(3, *size)) for c in cameras}
    cfg.input_features[STATE_KEY] = PolicyFeature(type=FeatureType.STATE, shape=state_shape)
    cfg.output_features = {ACTION_KEY: PolicyFeature(type=FeatureType.ACTION, shape=action_shape)}
    if policy_type == "diffusion" and cfg.crop_shape is None and cfg.resize_shape is None and preset == "small":
        cfg.crop_shape = (int(size[0] * 0.9), int(size[1] * 0.9))  # random-crop augmentation, centre crop at run time
    cfg.validate_features()

    set_seed(seed)
    keys = [*cfg.input_features, ACTION_KEY]
    stats = aggregate_stats([{k: v for k, v in m.stats.items() if k in keys} for m in metas])
    action_floor = np.append(default_min_range(action_shape[0] - 1), 0.0)  # the gripper (last dim) keeps its range
    floored = {ACTION_KEY: floor_stats(stats, ACTION_KEY, action_floor),
               STATE_KEY: floor_stats(stats, STATE_KEY, np.full(state_shape[0], TRANSLATION_FLOOR_M))}
    log.info("normalisation floors applied (near-constant dims left unstretched): action dims %s, state dims %s",
             floored[ACTION_KEY], floored[STATE_KEY])
    delta_timestamps = resolve_delta_timestamps(cfg, metas[0])
    cached_cls = _cached_dataset_class()
    parts = [cached_cls(root.name, root=root, delta_timestamps=delta_timestamps, video_backend="pyav",
                        cameras=cameras, image_size=size) for root in roots]
    dataset = torch.utils.data.ConcatDataset(parts)

    policy = make_policy(cfg, ds_meta=metas[0])
    preprocessor, postprocessor = make_pre_post_processors(cfg, dataset_stats=stats)
    optimizer = cfg.get_optimizer_preset().build(policy.get_optim_params())
    scheduler_cfg = cfg.get_scheduler_preset()
    lr_scheduler = scheduler_cfg.build(optimizer, steps) if scheduler_cfg is not None else None
    grad_clip_norm = cfg.get_optimizer_preset().grad_clip_norm

    # Episode-aware sampling over the concatenation: offset each dataset's episode bounds.
    starts, ends, offset = [], [], 0
    for part in parts:
        starts += [offset + int(i) for i in part.meta.episodes["dataset_from_index"]]
        ends += [offset + int(i) for i in part.meta.episodes["dataset_to_index"]]
        offset += len(part)
    sampler = EpisodeAwareSampler(starts, ends, drop_n_last_frames=getattr(cfg, "drop_n_last_frames", 0), shuffle=True)
    if len(sampler) == 0:
        raise ValueError(f"no training frames: every episode is at most drop_n_last_frames="
                         f"{getattr(cfg, 'drop_n_last_frames', 0)} frames long")
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                                         drop_last=len(sampler) > batch_size, generator=generator)
    accelerator = Accelerator(cpu=str(device) == "cpu", step_scheduler_with_optimizer=False)
    policy, optimizer, loader, lr_scheduler = accelerator.prepare(policy, optimizer, loader, lr_scheduler)
    batches = cycle(loader)
    meters = {name: AverageMeter(name, ":.3f") for name in ("loss", "grad_norm", "lr", "update_s", "dataloading_s")}
    tracker = MetricsTracker(batch_size, len(dataset), len(starts), meters, initial_step=0, accelerator=accelerator)

    n_params = sum(p.numel() for p in policy.parameters())
    log.info("training %s (%.2f M params) on %d frames / %d episodes from %d dataset(s), cameras %s at %dx%d",
             policy_type, n_params / 1e6, len(dataset), len(starts), len(parts), cameras, size[1], size[0])
    losses = []
    t0 = time.perf_counter()
    policy.train()
    for step in range(1, steps + 1):
        t_data = time.perf_counter()
        batch = preprocessor(next(batches))
        tracker.dataloading_s = time.perf_counter() - t_data
        tracker, _ = update_policy(tracker, policy, batch, optimizer, grad_clip_norm,
                                   accelerator=accelerator, lr_scheduler=lr_scheduler)
        loss = float(tracker.loss.val)
        if not math.isfinite(loss):
            raise RuntimeError(f"training diverged: loss {loss} at step {step}")
        losses.append(loss)
        tracker.step()
        if log_every and (step % log_every == 0 or step == steps):
            log.info("step %d/%d loss %.4f (%.1f steps/s)", step, steps, np.mean(losses[-log_every:]),
                     step / (time.perf_counter() - t0))
    train_s = time.perf_counter() - t0

    out_dir.mkdir(parents=True, exist_ok=True)
    policy = accelerator.unwrap_model(policy)
    policy.save_pretrained(out_dir)
    preprocessor.save_pretrained(out_dir)
    postprocessor.save_pretrained(out_dir)
    meta = {
        "robot": info["robot"],
        "cameras": cameras,
        "image_size": [int(size[0]), int(size[1])],  # (height, width)
        "recorded_image_size": info["recorded_image_size"],  # (height, width) of the training videos
        "frame_codec": info["frame_codec"],
        "action_convention": info["action_convention"],
        "state_names": info["state_names"],
        "action_names": info["action_names"],
        "fps": info["fps"],
        "policy_type": policy_type,
        "datasets": [str(r) for r in roots],
        "normalisation_floored_dims": floored,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=1))
    summary = {
        "out": str(out_dir), "policy": policy_type, "steps": steps, "batch_size": batch_size, "seed": seed,
        "frames": len(dataset), "episodes": len(starts), "params_m": round(n_params / 1e6, 3),
        "train_s": round(train_s, 1), "samples_per_s": round(steps * batch_size / train_s, 1),
        "loss_first": round(float(np.mean(losses[:10])), 4), "loss_last": round(float(np.mean(losses[-10:])), 4),
        **{k: meta[k] for k in ("robot", "cameras", "image_size", "action_convention")},
    }
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
