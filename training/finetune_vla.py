"""Stage 2: LoRA action finetuning.

LoRA adapters (peft) on the backbone plus the action decoder, trained with L1 on
normalised action chunks from action-labelled LeRobot episodes (plus the latent
cross-entropy when a LAM labeller is given). Starting from a stage-1 checkpoint
gives the latent-pretrained policy; starting from a bare backbone ("tiny" or a
hub id) gives the from-scratch baseline.
"""

from __future__ import annotations

import logging
from pathlib import Path

from models.vla import VLA, ActionDecoder, ActionNormalizer, LoraSettings, VLAConfig
from training.pretrain_vla import TrainSettings, is_checkpoint, prepare_out_dir, set_trainable, train
from training.vla_data import Labeller, VLAFrames, label_latent_codes, load_episodes

log = logging.getLogger(__name__)


def _start_model(init: str, cameras: list[str] | None, chunk_size: int) -> VLA:
    if is_checkpoint(init):
        model = VLA.load(init)
        if model.has_lora:
            model.merge_lora()  # stage-1 LoRA becomes part of the base weights
            model.config.lora = None
        if model.config.chunk_size != chunk_size or model.config.stage != "action":
            model.config.chunk_size = chunk_size
            hidden = model.latent_head.proj.in_features
            c = model.config
            model.action_decoder = ActionDecoder(hidden, chunk_size, c.action_dim, c.decoder_dim, c.decoder_heads, c.decoder_layers)
        return model
    if cameras is None:
        raise ValueError("cameras are needed when finetuning from a bare backbone")
    return VLA.create(VLAConfig(backbone=init, cameras=cameras, chunk_size=chunk_size, stage="action"))


def finetune_vla(
    datasets: list[str | Path],
    out_dir: str | Path,
    *,
    init: str = "tiny",
    cameras: list[str] | None = None,
    chunk_size: int = 5,
    robot: str | None = None,
    max_episodes: int | None = None,
    lora: LoraSettings | None = None,
    labeller: Labeller | None = None,
    frame_gap: int = 3,
    drop_noops: bool = True,
    settings: TrainSettings | None = None,
    resume: bool = False,
) -> dict:
    """``init``: a stage-1 checkpoint directory, "tiny", or a backbone hub id / path."""
    settings = settings or TrainSettings()
    lora = lora or LoraSettings()
    out_dir = Path(out_dir)
    state = prepare_out_dir(out_dir, resume)
    if state is not None:
        model = VLA.load(out_dir)
        data = load_episodes(datasets, cameras=model.config.cameras, require_actions=True, max_episodes=max_episodes)
    else:
        if is_checkpoint(init):
            cameras = VLAConfig.load(Path(init) / "vla_config.json").cameras
        data = load_episodes(datasets, cameras=cameras, require_actions=True, max_episodes=max_episodes)
        model = _start_model(init, data.cameras, chunk_size)
        if data.actions.shape[1] != model.config.action_dim:
            raise ValueError(f"datasets have {data.actions.shape[1]}-D actions, the model {model.config.action_dim}-D")
        model.config.stage = "action"
        model.config.robot = robot or data.robot_type or model.config.robot
        model.normalizer = ActionNormalizer.fit(data.actions)
        model.apply_lora(lora)
    codes = label_latent_codes(data, labeller, frame_gap) if labeller is not None else None
    set_trainable(model, "action", with_codes=codes is not None)
    dataset = VLAFrames(data, model.config.cameras, model.config.chunk_size, normalizer=model.normalizer, codes=codes,
                        drop_noops=drop_noops)
    result = train(model, dataset, out_dir, settings, "finetune-vla (LoRA + action decoder)", state)
    result["episodes"] = int(len(set(data.episode.tolist())))
    result["training_frames"] = len(dataset)
    result["noop_frames_dropped"] = len(data) - len(dataset)
    return result
