"""Stage 2: action finetuning.

LoRA adapters (peft) on the backbone, or the whole backbone (``finetune="full"``),
plus the action decoder, trained on normalised action chunks from action-labelled
LeRobot episodes (L1 or MSE), plus the latent cross-entropy when a LAM labeller
is given. Starting from a stage-1 checkpoint gives the latent-pretrained policy;
starting from a bare backbone ("tiny" or a hub id) gives the from-scratch
baseline, trained on exactly the same parameters.

The checkpoint carries everything the runtime must reproduce: cameras, image
size, whether (and how normalised) the robot state is an input, the action
normalisation and the action convention of the data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from models.vla import VLA, ActionDecoder, ActionNormalizer, LoraSettings, VLAConfig
from models.vla.model import vision_position_count
from models.vla.normalization import StateNormalizer
from training.pretrain_vla import TrainSettings, is_checkpoint, prepare_out_dir, seed_everything, set_trainable, train
from training.vla_data import Labeller, VLAFrames, label_latent_codes, load_episodes

log = logging.getLogger(__name__)
STATE_DIM = 7  # observation.state of every lam_ros dataset: x, y, z, roll, pitch, yaw, gripper


def _start_model(init: str, cameras: list[str] | None, chunk_size: int, state_dim: int) -> VLA:
    if is_checkpoint(init):
        model = VLA.load(init)
        if model.has_lora:
            model.merge_lora()  # stage-1 LoRA becomes part of the base weights
            model.config.lora = None
        c = model.config
        if c.chunk_size != chunk_size or c.stage != "action" or c.state_dim != state_dim:
            # a fresh decoder, so it learns vision positions even when the stage-1 checkpoint predates them
            c.chunk_size, c.state_dim = chunk_size, state_dim
            c.vision_positions = vision_position_count(model.base_model().config, c.cameras)
            hidden = model.latent_head.proj.in_features
            model.action_decoder = ActionDecoder(hidden, chunk_size, c.action_dim, c.decoder_dim, c.decoder_heads,
                                                 c.decoder_layers, state_dim=state_dim, vision_positions=c.vision_positions)
        return model
    if cameras is None:
        raise ValueError("cameras are needed when finetuning from a bare backbone")
    return VLA.create(VLAConfig(backbone=init, cameras=cameras, chunk_size=chunk_size, stage="action", state_dim=state_dim))


def finetune_vla(
    datasets: list[str | Path],
    out_dir: str | Path,
    *,
    init: str = "tiny",
    cameras: list[str] | None = None,
    chunk_size: int = 5,
    robot: str | None = None,
    max_episodes: int | None = None,
    min_episodes: int | None = None,
    lora: LoraSettings | None = None,
    labeller: Labeller | None = None,
    frame_gap: int = 3,
    latent_loss_weight: float | None = None,
    drop_noops: bool = True,
    use_state: bool = False,
    action_loss: str = "l1",
    finetune: str = "lora",
    augment_shift: int = 0,
    augment_feature_shift: float = 0.0,
    settings: TrainSettings | None = None,
    resume: bool = False,
) -> dict:
    """``init``: a stage-1 checkpoint directory, "tiny", or a backbone hub id / path. ``latent_loss_weight``
    scales the latent-token cross-entropy (with a ``labeller``) against the action loss; None keeps the
    checkpoint's (stage 1's) weight, 1.0 by default."""
    settings = settings or TrainSettings()
    lora = lora or LoraSettings()
    out_dir = Path(out_dir)
    state = prepare_out_dir(out_dir, resume)
    seed_everything(settings.seed)  # --seed decides the initial weights too, not only the data order
    if state is not None:
        model = VLA.load(out_dir)
        data = load_episodes(datasets, cameras=model.config.cameras, require_actions=True, max_episodes=max_episodes,
                             image_size=model.config.image_size)
    else:
        if is_checkpoint(init):
            cameras = VLAConfig.load(Path(init) / "vla_config.json").cameras
        model = _start_model(init, cameras, chunk_size, STATE_DIM if use_state else 0)
        data = load_episodes(datasets, cameras=model.config.cameras, require_actions=True, max_episodes=max_episodes,
                             image_size=model.config.image_size, min_episodes=min_episodes)
        c = model.config
        if data.actions.shape[1] != c.action_dim:
            raise ValueError(f"datasets have {data.actions.shape[1]}-D actions, the model {c.action_dim}-D")
        if use_state and (data.states is None or data.states.shape[1] != STATE_DIM):
            raise ValueError(f"--use-state needs a {STATE_DIM}-D observation.state in every dataset")
        c.stage = "action"
        c.robot = robot or data.robot_type or c.robot
        c.action_convention = data.action_convention
        c.source_image_size = list(data.source_image_size) if data.source_image_size else None
        c.frame_codec = data.frame_codec
        c.action_loss, c.finetune, c.augment_shift = action_loss, finetune, int(augment_shift)
        c.augment_feature_shift = float(augment_feature_shift)
        model.normalizer = ActionNormalizer.fit(data.actions)
        model.state_normalizer = StateNormalizer.fit(data.states) if use_state else None
        if finetune == "lora":
            model.apply_lora(lora)
    if latent_loss_weight is not None:
        model.config.latent_loss_weight = float(latent_loss_weight)
    codes = label_latent_codes(data, labeller, frame_gap) if labeller is not None else None
    set_trainable(model, "action", with_codes=codes is not None)
    dataset = VLAFrames(data, model.config.cameras, model.config.chunk_size, normalizer=model.normalizer, codes=codes,
                        drop_noops=drop_noops, state_normalizer=model.state_normalizer)
    result = train(model, dataset, out_dir, settings, f"finetune-vla ({model.config.finetune} + action decoder)", state)
    result["episodes"] = int(len(set(data.episode.tolist())))
    result["training_frames"] = len(dataset)
    result["noop_frames_dropped"] = len(data) - len(dataset)
    return result
