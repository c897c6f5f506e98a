"""The VLA's configuration: one JSON-serialisable dataclass saved with every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
DEFAULT_INSTRUCTION_FORMAT = "In: What action should the robot take to {instruction}?\nOut:"


@dataclass
class LoraSettings:
    """peft LoRA settings (FACTS section 8: rank 32, alpha 16)."""

    rank: int = 32
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"


@dataclass
class VLAConfig:
    """Everything needed to rebuild a VLA around its saved weights.

    ``backbone`` records where the vision-language model came from ("tiny" for the
    project's randomly initialised test configuration, else a hub id or local path);
    the checkpoint itself carries the backbone's config and processor, so reloading
    never touches the hub.
    """

    backbone: str = "tiny"
    cameras: list[str] = field(default_factory=lambda: ["third_person", "wrist"])
    robot: str = "widowx"
    action_dim: int = 7
    chunk_size: int = 5
    num_latent_tokens: int = 4
    codebook_size: int = 16
    max_instruction_tokens: int = 48
    instruction_format: str = DEFAULT_INSTRUCTION_FORMAT
    decoder_dim: int = 128
    decoder_heads: int = 4
    decoder_layers: int = 2
    latent_loss_weight: float = 1.0
    lora: LoraSettings | None = None
    stage: str = "latent"  # "latent" (stage 1) or "action" (stage 2)
    # Preprocessing and conventions the checkpoint was trained with; the runtime applies them.
    image_size: int | None = None  # camera frames are resized to this square (models.image_prep); None: the processor's
    source_image_size: list[int] | None = None  # (height, width) the training frames were recorded at
    # The video codec the training frames went through (recorded as video, decoded for training), e.g. "h264".
    # The runtime passes each camera frame through the same codec at source_image_size before the model
    # (lam_ros.policy.Policy): a codec's artefacts changed the frozen trunk's features by 40-50 % at 64 px, and
    # a policy shown raw frames scored 2 % where the same weights shown codec-matched frames scored 23 %
    # (docs/policy_ladder.md). None: lossless training frames, or a checkpoint saved before this field.
    frame_codec: str | None = None
    state_dim: int = 0  # proprioceptive state [x, y, z, roll, pitch, yaw, gripper] fed to the decoder; 0: none
    action_convention: str = "bridge_delta"  # lam_ros.action_convention
    action_loss: str = "l1"  # "l1" | "mse" on normalised action chunks
    finetune: str = "lora"  # stage 2 trains "lora" adapters or the "full" backbone (+ the heads either way)
    augment_shift: int = 0  # random-shift augmentation (pixels) used in training (information)
    # Random shift of the frozen trunk's feature maps in training, in feature cells (models.pretrained_vision;
    # composes with the feature cache, unlike augment_shift). Training only: never applied at inference.
    augment_feature_shift: float = 0.0
    # A frozen pretrained vision trunk in place of the backbone's own tower, e.g. "efficientnet-lite0/stride16"
    # (information: the backbone config in the checkpoint rebuilds it); None: the backbone's own vision tower.
    vision_tower: str | None = None
    # Learned position embeddings the action decoder adds to the vision tokens (cameras x tokens per image).
    # Its cross-attention is otherwise blind to *where* a token sits: a frozen CNN trunk's features carry no
    # position, and the Llama's rotary positions never enter its hidden states. None: count them at creation
    # (0 for a backbone with a variable token count); 0: none (checkpoints saved before this field).
    vision_positions: int | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        self.cameras = list(self.cameras)
        if not self.cameras:
            raise ValueError("VLAConfig.cameras must name at least one camera")
        if self.chunk_size < 1:
            raise ValueError(f"VLAConfig.chunk_size must be >= 1, got {self.chunk_size}")
        if self.action_dim < 2:
            raise ValueError(f"VLAConfig.action_dim must be >= 2 (translation.. + gripper), got {self.action_dim}")
        if "{instruction}" not in self.instruction_format:
            raise ValueError(f"instruction_format must contain '{{instruction}}': {self.instruction_format!r}")
        if self.stage not in ("latent", "action"):
            raise ValueError(f"VLAConfig.stage must be 'latent' or 'action', got {self.stage!r}")
        if self.action_loss not in ("l1", "mse"):
            raise ValueError(f"VLAConfig.action_loss must be 'l1' or 'mse', got {self.action_loss!r}")
        if self.finetune not in ("lora", "full"):
            raise ValueError(f"VLAConfig.finetune must be 'lora' or 'full', got {self.finetune!r}")
        if self.state_dim < 0:
            raise ValueError(f"VLAConfig.state_dim must be >= 0, got {self.state_dim}")
        if self.vision_positions is not None and self.vision_positions < 0:
            raise ValueError(f"VLAConfig.vision_positions must be >= 0, got {self.vision_positions}")
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"VLAConfig.image_size must be >= 8 pixels, got {self.image_size}")
        from lam_ros.action_convention import check_convention

        check_convention(self.action_convention)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> VLAConfig:
        data = json.loads(Path(path).read_text())
        version = data.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"{path}: checkpoint format {version} is newer than this code ({FORMAT_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown VLA config keys {sorted(unknown)}")
        data.setdefault("vision_positions", 0)  # saved before the decoder learned vision positions
        return cls(**data)
