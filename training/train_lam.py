"""Train a latent action model on multi-view LeRobot datasets with Accelerate.

Runs unchanged on one CPU, one GPU, or several GPUs/nodes via ``accelerate launch``.
Checkpoints (``<output>/checkpoint/``): config.json, model.safetensors,
optimizer.safetensors + optimizer.json (training/train_state.py) and train_state.json (step, history); ``resume=True`` continues them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.lam import LAMConfig, LatentActionModel, LatentBuffer, compute_losses, load_weights, objective_weights, save_lam

from .lam_metrics import effective_code_fraction
from .train_state import load_optimizer, save_optimizer
from .lam_data import TransitionDataset, load_episodes, parse_frame_gap, split_episodes

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    datasets: list[str]
    views: list[str]
    output: str
    objective: str = "mvp"
    frame_gap: str = "0.6s"
    steps: int = 300
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    holdout_frac: float = 0.2
    save_every: int = 100
    log_every: int = 10
    seed: int = 0
    usage_warn_threshold: float = 0.25
    resume: bool = False
    cpu: bool = False
    threads: int = 0  # torch CPU threads (0: torch's default); 1 is fastest for tiny models on a shared CPU
    model: dict = field(default_factory=dict)  # LAMConfig overrides (image_size, hidden_dim, quantizer, ...)
    # a frozen trunk's per-frame features (feature_source effnet), read before and written after training, so runs
    # on the same frames compute each frame once between them (the VLA's feature-cache file format and keys)
    feature_cache: str | None = None


class LAMObjective(torch.nn.Module):
    """The model plus its objective, so DDP sees one ``forward`` per step."""

    def __init__(self, model: LatentActionModel):
        super().__init__()
        self.model = model
        self.buffer = LatentBuffer(model.cfg.cycle_buffer_size)

    def forward(self, frames: torch.Tensor):
        return compute_losses(self.model, frames, self.model.cfg.loss_weights, self.buffer)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    steps = [h["step"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in sorted({k for h in history for k in h} - {"step", "usage", "alive_codes", "effective_codes"}):
        ax1.plot(steps, [h.get(key, np.nan) for h in history], label=key)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_title("losses")
    ax1.legend(fontsize=7)
    ax2.plot(steps, [h["usage"] for h in history], label="codes used in log window")
    ax2.plot(steps, [h["alive_codes"] for h in history], label="codes alive (usage EMA)", alpha=0.6)
    ax2.plot(steps, [h.get("effective_codes", np.nan) for h in history], label="effective codes (perplexity / size)")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("step")
    ax2.set_title("codebook usage")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_model_config(cfg: TrainConfig, fps: int) -> LAMConfig:
    overrides = dict(cfg.model)
    return LAMConfig(views=[v.removeprefix("observation.images.") for v in cfg.views],
                     frame_gap=parse_frame_gap(cfg.frame_gap, fps), objective=cfg.objective,
                     loss_weights=objective_weights(cfg.objective), **overrides)


def train(cfg: TrainConfig) -> dict:
    """Train; returns a summary (final losses, usage, warnings, checkpoint path)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm import tqdm

    weights = objective_weights(cfg.objective)
    if weights["cross"] > 0 and len(cfg.views) < 2:
        raise ValueError(f"objective {cfg.objective!r} reconstructs across views: give at least 2 --views")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    accelerator = Accelerator(cpu=cfg.cpu)
    set_seed(cfg.seed)
    out = Path(cfg.output)
    ck_dir = out / "checkpoint"
    image_size = int(cfg.model.get("image_size", LAMConfig.image_size))
    episodes = load_episodes(cfg.datasets, cfg.views, image_size)
    fps = episodes[0].fps
    if any(e.fps != fps for e in episodes):
        raise ValueError(f"datasets have different fps {sorted({e.fps for e in episodes})}; train on one rate")
    model_cfg = build_model_config(cfg, fps)
    train_eps, held = split_episodes(episodes, cfg.holdout_frac)
    data = TransitionDataset(train_eps, cfg.views, model_cfg.frame_gap, triples=weights["ac"] > 0)
    loader = torch.utils.data.DataLoader(data, batch_size=min(cfg.batch_size, len(data)), shuffle=True,
                                         drop_last=True, num_workers=0)
    model = LatentActionModel(model_cfg)
    trunk, loaded = None, 0
    if hasattr(model.observer, "cache_features"):  # a frozen trunk: each frame's features computed once, not every epoch
        trunk = model.observer.trunk
        loaded = model.observer.cache_features(from_file=cfg.feature_cache)
        if loaded:
            log.info("%d frames' trunk features read from %s", loaded, cfg.feature_cache)
    elif cfg.feature_cache:
        raise ValueError(f"a feature cache needs a frozen trunk feature source (effnet); this LAM's is "
                         f"{model_cfg.feature_source!r}")
    objective = LAMObjective(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    start, history, warnings_seen = 0, [], []
    if cfg.resume and (ck_dir / "train_state.json").is_file():
        load_weights(model, ck_dir)
        load_optimizer(opt, ck_dir)
        state = json.loads((ck_dir / "train_state.json").read_text())
        start, history = int(state["step"]), state["history"]
        log.info("resumed from %s at step %d", ck_dir, start)
    objective, opt, loader = accelerator.prepare(objective, opt, loader)

    def save(step: int) -> None:
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return
        save_lam(accelerator.unwrap_model(objective).model, ck_dir)
        save_optimizer(opt.optimizer if hasattr(opt, "optimizer") else opt, ck_dir)
        state = {"step": step, "history": history, "train_config": asdict(cfg),
                 "train_episodes": [[e.dataset, e.index] for e in train_eps],
                 "heldout_episodes": [[e.dataset, e.index] for e in held]}
        (ck_dir / "train_state.json").write_text(json.dumps(state, indent=1))
        plot_curves(history, out / "training_curves.png")

    log.info("training %s on %d transitions (%d train episodes, %d held out), gap %d steps",
             cfg.objective, len(data), len(train_eps), len(held), model_cfg.frame_gap)
    quantizer = model.quantizer
    step, it = start, iter(loader)
    window_counts = torch.zeros(model_cfg.num_codes)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train-lam {cfg.objective}",
               disable=not accelerator.is_main_process)
    objective.train()
    while step < cfg.steps:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        loss, terms, codes = objective(batch["frames"])
        opt.zero_grad()
        accelerator.backward(loss)
        if cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(objective.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        window_counts += torch.bincount(codes.detach().flatten().cpu(), minlength=model_cfg.num_codes)
        if step % cfg.log_every == 0 or step == cfg.steps:
            usage = float((window_counts > 0).float().mean())  # codes used since the last log line
            effective = effective_code_fraction(window_counts.numpy())
            window_counts.zero_()
            alive = quantizer.usage_fraction()
            history.append({"step": step, "loss": float(loss.detach()), **terms, "usage": usage,
                            "effective_codes": effective, "alive_codes": alive})
            bar.set_postfix(loss=f"{loss.item():.4f}", usage=f"{usage:.2f}")
            if usage < cfg.usage_warn_threshold:
                msg = (f"codebook collapse warning at step {step}: only {usage:.0%} of {model_cfg.num_codes} codes "
                       f"in use (threshold {cfg.usage_warn_threshold:.0%})")
                warnings_seen.append(msg)
                log.warning(msg)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save(step)
    bar.close()
    final_codes = {}
    if step > start and accelerator.is_main_process:
        final_codes = checkpoint_effective_codes(accelerator.unwrap_model(objective).model, data, cfg.views)
        for view, effective in final_codes.items():
            if effective < cfg.usage_warn_threshold:
                # "usage" counts a code used once: a LAM that gives one code to nearly every transition passes it
                msg = (f"the LAM's codes have collapsed on view {view!r}: the trained model's codes of its training "
                       f"transitions are as informative as {effective * model_cfg.num_codes:.1f} equally used codes "
                       f"of {model_cfg.num_codes} (effective codes {effective:.0%} < {cfg.usage_warn_threshold:.0%}); "
                       "latent actions labelled from this view carry little information (try another --seed, more "
                       "steps or more data)")
                warnings_seen.append(msg)
                log.warning(msg)
        saved = json.loads((ck_dir / "train_state.json").read_text())
        saved["final_effective_codes"] = final_codes
        (ck_dir / "train_state.json").write_text(json.dumps(saved, indent=1))
    if step == start:  # nothing to do (already trained to cfg.steps): still make sure files exist
        save(step)
    if trunk is not None and cfg.feature_cache and accelerator.is_main_process and trunk.cached_frames() > loaded:
        log.info("%d frames' trunk features written to %s", trunk.save_feature_cache(cfg.feature_cache), cfg.feature_cache)
    return {"checkpoint": str(ck_dir), "steps": step, "last": history[-1] if history else {},
            "final_effective_codes": final_codes, "warnings": warnings_seen, "transitions": len(data)}


@torch.no_grad()
def checkpoint_effective_codes(model: LatentActionModel, data: TransitionDataset, views: list[str],
                               max_transitions: int = 1024) -> dict[str, float]:
    """Effective codes (perplexity / codebook size, ``lam_metrics.effective_code_fraction``) per view of the
    trained model, in eval mode, over up to ``max_transitions`` evenly spaced training transitions: what labelling
    with the checkpoint will see. The training-time windows mix views and a codebook that restarts dead codes;
    a 300-step LAM whose windows used 10 of 16 codes gave one code to 97 % of its transitions here."""
    from .eval_lam import encode_pairs

    was_training = model.training
    model.eval()
    picks = np.linspace(0, len(data) - 1, min(len(data), max_transitions)).round().astype(int)
    frames = np.stack([data[int(i)]["frames"].numpy() for i in picks])  # (N, V, T, H, W, 3) uint8
    out = {}
    for j, view in enumerate(views):
        _, codes = encode_pairs(model, frames[:, j, 0], frames[:, j, 1])
        counts = np.bincount(codes.reshape(-1), minlength=model.cfg.num_codes)
        out[view.removeprefix("observation.images.")] = effective_code_fraction(counts)
    model.train(was_training)
    return out
