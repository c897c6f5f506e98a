"""Stage 1: latent-action pretraining of the VLA, plus the training loop shared
with stage 2 (``training.finetune_vla``).

A trained LAM pseudo-labels every frame t with the codes of the transition
t -> t+k; the backbone learns to predict those codes from the current images and
the instruction (cross-entropy). No robot actions are used.

The loop runs under ``accelerate.Accelerator`` (``accelerate launch`` works with
no code change), in bf16 on GPU, shows a tqdm bar, writes loss curves as PNG and
resumes from ``<out>/train_state``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.vla import VLA, LoraSettings, VLAConfig
from models.vla.model import CONFIG_FILE
from training.train_state import load_optimizer, load_trainer_state, save_optimizer, save_trainer_state
from training.vla_data import Labeller, VLAFrames, label_latent_codes, load_episodes, make_collate, plot_curves

log = logging.getLogger(__name__)
TRAIN_STATE_DIR = "train_state"


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    save_every: int = 500
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on GPU), "no", "bf16", "fp16"
    # Learning-rate schedule: a transformers scheduler name ("constant", "cosine", "linear", ...), with
    # ``warmup_steps`` of linear warm-up ("constant" with warm-up becomes "constant_with_warmup").
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    # Exponential moving average of the trained weights (0 = off). With it on, the saved checkpoint holds
    # the averaged weights (what the policy runs); the raw weights are kept in train_state/ for --resume.
    ema_decay: float = 0.0
    # A file memoising a frozen pretrained trunk's features per frame, read before training and written
    # once every frame is in it, so runs on the same frames share the trunk's work (no effect without such a trunk).
    feature_cache: str | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")


LR_SCHEDULES = ("constant", "cosine", "linear")
RAW_WEIGHTS = "raw_model.safetensors"  # in train_state/: the un-averaged weights when EMA is on


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, step: int):
    """The transformers learning-rate scheduler for ``settings``, positioned at ``step`` (for --resume)."""
    from transformers import get_scheduler

    name = settings.lr_schedule
    if name == "constant" and settings.warmup_steps:
        name = "constant_with_warmup"
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", settings.lr)
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=settings.warmup_steps, num_training_steps=settings.steps)
    if step:  # LambdaLR's last_epoch argument is not exposed by get_scheduler: move the schedule on instead
        scheduler.last_epoch = step
        for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * factor(step)
    return scheduler


def make_ema(model: torch.nn.Module, decay: float, step: int):
    """torch's ``AveragedModel`` with an EMA of the parameters (frozen ones stay what they are; buffers, e.g.
    a frozen trunk's weights, are copied, not averaged). ``n_averaged`` is set to ``step`` so a resumed run keeps averaging
    instead of restarting from a copy."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    ema.n_averaged.fill_(step)
    return ema


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (accelerate's ``set_seed``)."""
    from accelerate.utils import set_seed

    set_seed(seed)


def prepare_out_dir(out_dir: Path, resume: bool) -> dict | None:
    """The saved trainer state when resuming; refuses to overwrite a run otherwise."""
    state = load_trainer_state(out_dir / TRAIN_STATE_DIR)
    if resume:
        if state is None:
            raise FileNotFoundError(f"--resume: no training state in {out_dir / TRAIN_STATE_DIR}")
        return state
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"output directory {out_dir} is not empty; pass --resume to continue that run")
    return None


def train(model: VLA, dataset: VLAFrames, out_dir: Path, settings: TrainSettings, title: str, resume_state: dict | None = None) -> dict:
    """Train the parameters of ``model`` that require grad; save the checkpoint to
    ``out_dir`` and the optimizer/trainer state to ``out_dir/train_state``."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    mp = settings.mixed_precision
    if mp == "auto":
        mp = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=mp, dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    with attention_for(model, mp, accelerator.device):
        return _train(model, dataset, out_dir, settings, title, resume_state, accelerator)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX tiles, from Linux's /proc/cpuinfo),
    the case where bf16 autocast makes CPU training faster; without them torch emulates bf16 and is slower
    than fp32. False where the flags cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


@contextmanager
def attention_for(model: VLA, mixed_precision: str, device: torch.device):
    """Train the language model with eager attention when autocasting to bf16 on the CPU, and give the model
    back with the attention implementation it came with.

    torch's CPU flash-attention kernel (what SDPA dispatches to) is slower backward in bf16 than in fp32: on
    the demo's finetuning step (AMD EPYC with AVX-512 BF16, one thread) bf16 autocast made the matrix products
    3.2x faster but the attention backward 3x slower, while bf16 with eager attention (matmul + softmax, which
    autocast runs in bf16 and fp32 respectively) took 80 ms per step against 114 ms in fp32 with SDPA, and the
    demo's whole 6000-step finetune 479-537 s against 699-735 s (docs/vla.md, "bf16 on the CPU"). On a GPU,
    and in fp32 anywhere, nothing changes. The setting is not saved in checkpoints: inference keeps SDPA.
    """
    base = model.base_model()
    text = getattr(getattr(base, "config", None), "text_config", None)
    cpu_bf16 = mixed_precision == "bf16" and device.type == "cpu"
    switch = (cpu_bf16 and text is not None and text._attn_implementation == "sdpa"
              and hasattr(base, "set_attn_implementation"))
    if cpu_bf16 and not cpu_has_native_bf16():
        log.warning("bf16 on a CPU without bf16 instructions (avx512_bf16 / amx_bf16): torch emulates it, which is "
                    "usually slower than fp32; pass --mixed-precision no")
    if switch:
        base.set_attn_implementation({"text_config": "eager"})
        log.info("bf16 on the CPU: the language model trains with eager attention (faster here than SDPA's kernel)")
    try:
        yield
    finally:
        if switch:
            base.set_attn_implementation({"text_config": "sdpa"})


def _train(model, dataset, out_dir, settings, title, resume_state, accelerator) -> dict:
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    set_seed(settings.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    step = 0
    history: dict[str, list[float]] = {}
    if resume_state is not None:
        load_optimizer(optimizer, out_dir / TRAIN_STATE_DIR)
        step = int(resume_state["step"])
        history = resume_state["history"]
    # EMA: on resume the checkpoint in out_dir holds the average, train_state/ the raw weights
    ema = make_ema(model, settings.ema_decay, step) if settings.ema_decay else None
    if ema is not None and resume_state is not None and (out_dir / TRAIN_STATE_DIR / RAW_WEIGHTS).exists():
        from safetensors.torch import load_model

        load_model(model, str(out_dir / TRAIN_STATE_DIR / RAW_WEIGHTS))
    scheduler = make_scheduler(optimizer, settings, step)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=min(settings.batch_size, len(dataset)),
        shuffle=True,
        drop_last=True,
        collate_fn=make_collate(model, augment_shift=model.config.augment_shift, seed=settings.seed),
        generator=torch.Generator().manual_seed(settings.seed),
    )
    tower = getattr(getattr(model.base_model(), "model", None), "vision_tower", None)
    cache = hasattr(tower, "cache_features") and not model.config.augment_shift
    if cache:  # a frozen pretrained trunk and no pixel augmentation: each frame's features are computed once
        tower.cache_features()
        loaded = 0
        if settings.feature_cache and Path(settings.feature_cache).exists():
            loaded = tower.load_feature_cache(settings.feature_cache)
        log.info("%s: caching the frozen vision trunk's features per frame (no pixel augmentation; %d read from %s)",
                 title, loaded, settings.feature_cache)
        warm_feature_cache(model, tower, dataset, title)
        if settings.feature_cache and accelerator.is_main_process and tower.cached_frames() > loaded:
            log.info("%s: %d frames' features written to %s", title,
                     tower.save_feature_cache(settings.feature_cache), settings.feature_cache)
    feature_shift = model.config.augment_feature_shift
    if feature_shift:
        if not hasattr(tower, "augment_feature_shift"):
            raise ValueError(f"augment_feature_shift={feature_shift} needs a frozen pretrained vision trunk "
                             f"(e.g. --init tiny-effnet); this model's tower is {type(tower).__name__}")
        tower.augment_feature_shift(feature_shift, seed=settings.seed)
        log.info("%s: feature maps shifted by up to %.2f cells in training", title, feature_shift)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    n_trainable = sum(p.numel() for p in params)
    log.info("%s: %d frames, %d trainable parameters, %d steps (from %d), %s",
             title, len(dataset), n_trainable, settings.steps, step, accelerator.device)

    def save() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            raw = accelerator.unwrap_model(model)
            if ema is not None:
                from safetensors.torch import save_model

                (out_dir / TRAIN_STATE_DIR).mkdir(parents=True, exist_ok=True)
                save_model(raw, str(out_dir / TRAIN_STATE_DIR / RAW_WEIGHTS))
                ema.module.save(out_dir)
            else:
                raw.save(out_dir)
            save_optimizer(optimizer, out_dir / TRAIN_STATE_DIR)
            save_trainer_state(out_dir / TRAIN_STATE_DIR, {"step": step, "history": history, "settings": asdict(settings)})
            plot_curves(history, out_dir / "loss_curves.png", title)

    bar = tqdm(total=settings.steps, initial=step, desc=title, disable=not accelerator.is_local_main_process)
    epoch, offset = divmod(step, len(loader))
    model.train()
    while step < settings.steps:
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, offset) if offset else loader
        for batch in batches:
            with accelerator.autocast():
                out = model(batch["inputs"], codes=batch.get("codes"), actions=batch.get("actions"),
                            action_mask=batch.get("action_mask"), state=batch.get("state"))
            accelerator.backward(out["loss"])
            if settings.grad_clip > 0:
                accelerator.clip_grad_norm_(params, settings.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(accelerator.unwrap_model(model))
            step += 1
            logs = {k: float(v.detach().float()) for k, v in out.items() if k.endswith("loss")}
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            if step % settings.save_every == 0 or step >= settings.steps:
                save()
            if step >= settings.steps:
                break
        epoch, offset = epoch + 1, 0
    bar.close()
    if cache:
        tower.cache_features(None)
    if feature_shift:
        tower.augment_feature_shift(0)  # the model the caller gets sees its features unshifted
    if ema is not None:  # the caller gets the model it saved: the average
        with torch.no_grad():
            for mine, averaged in zip(accelerator.unwrap_model(model).parameters(), ema.module.parameters()):
                mine.copy_(averaged)
    model.eval()
    final = {k: float(np.mean(v[-10:])) for k, v in history.items()}
    return {"step": step, "final_losses": final, "out_dir": str(out_dir)}


def warm_feature_cache(model: VLA, tower, dataset: VLAFrames, title: str, batch_size: int = 64) -> None:
    """Run every training frame through the frozen trunk once, in order and in large batches, before
    training: the first epoch then costs what the others do, the progress bar tells the truth about
    the remaining time, and a shared ``feature_cache`` file holds every frame, not only those the
    first run happened to sample. Frames already in the cache (read from the file) are only hashed."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=make_collate(model))
    before = tower.cached_frames()
    for batch in tqdm(loader, desc=f"{title}: vision features", leave=False):
        tower(batch["inputs"]["pixel_values"])
    log.info("%s: vision features of %d camera frames cached (%d new)", title, tower.cached_frames(),
             tower.cached_frames() - before)


COLLAPSE_FRACTION = 0.9


def warn_if_collapsed(codes: np.ndarray) -> float:
    """Warn when one code makes up more than ``COLLAPSE_FRACTION`` of the stage-1 targets: the LAM's latents
    then say almost nothing about these frames and stage 1 learns a constant (seen in the demo: a 300-step
    LAM gave code 6 to 97 % of the labelled frames). Returns the most frequent code's share."""
    share = float(np.bincount(codes.reshape(-1)).max() / codes.size) if codes.size else 0.0
    if share > COLLAPSE_FRACTION:
        log.warning("stage-1 targets have collapsed: one LAM code is %.0f %% of all %d code tokens; the latent "
                    "actions carry little information on these frames (train the LAM longer or on more data)",
                    100 * share, codes.size)
    return share


def set_trainable(model: VLA, stage: str, with_codes: bool = True) -> None:
    """Stage 1: backbone (all weights, or only LoRA adapters when applied) + latent head.
    Stage 2: LoRA adapters (or the whole backbone when ``config.finetune == "full"``) + action
    decoder (+ latent head when codes are given)."""
    for p in model.parameters():
        p.requires_grad = False
    if stage == "latent":
        if model.has_lora:
            for n, p in model.backbone.named_parameters():
                p.requires_grad = "lora_" in n
        else:
            for p in model.backbone.parameters():
                p.requires_grad = True
        heads = [model.latent_head]
    else:
        full = model.config.finetune == "full"
        for n, p in model.backbone.named_parameters():
            p.requires_grad = full or "lora_" in n
        heads = [model.action_decoder] + ([model.latent_head] if with_codes else [])
    for head in heads:
        for p in head.parameters():
            p.requires_grad = True


def pretrain_vla(
    datasets: list[str | Path],
    out_dir: str | Path,
    labeller: Labeller,
    *,
    backbone: str = "tiny",
    cameras: list[str] | None = None,
    frame_gap: int = 3,
    robot: str | None = None,
    lora: LoraSettings | None = None,
    settings: TrainSettings | None = None,
    resume: bool = False,
) -> dict:
    """Stage 1. ``labeller(frames_t, frames_tk) -> codes (B, num_tokens)``."""
    settings = settings or TrainSettings()
    out_dir = Path(out_dir)
    state = prepare_out_dir(out_dir, resume)
    seed_everything(settings.seed)  # --seed decides the initial weights too, not only the data order
    if state is not None:
        model = VLA.load(out_dir)
        cameras = model.config.cameras
    data = load_episodes(datasets, cameras=cameras)
    codes = label_latent_codes(data, labeller, frame_gap=frame_gap)
    warn_if_collapsed(codes)
    if state is None:
        num_tokens = codes.shape[1]
        config = VLAConfig(
            backbone=backbone,
            cameras=data.cameras,
            robot=robot or data.robot_type or "widowx",
            num_latent_tokens=num_tokens,
            codebook_size=max(16, int(codes.max()) + 1),
            stage="latent",
        )
        if codes.min() < 0:
            raise ValueError(f"labeller returned negative codes (min {codes.min()})")
        model = VLA.create(config)
        if lora is not None:
            model.apply_lora(lora)
    if codes.shape[1] != model.config.num_latent_tokens or codes.max() >= model.config.codebook_size:
        raise ValueError(
            f"labeller codes {codes.shape[1]} tokens, max {codes.max()} do not fit the model "
            f"({model.config.num_latent_tokens} tokens x {model.config.codebook_size} codes)"
        )
    set_trainable(model, "latent")
    dataset = VLAFrames(data, model.config.cameras, model.config.chunk_size, codes=codes)
    result = train(model, dataset, out_dir, settings, "pretrain-vla (latent actions)", state)
    result["code_histogram"] = np.bincount(codes.reshape(-1), minlength=model.config.codebook_size).tolist()
    return result


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).exists()
