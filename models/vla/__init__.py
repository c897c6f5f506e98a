"""Vision-language-action policy model (FACTS section 8): a transformers
image-text-to-text backbone, a latent-action head (stage 1) and an action-chunk
decoder (stage 2), with LoRA via peft and safetensors + JSON checkpoints."""

from .backbone import build_backbone, build_tiny_backbone, build_tiny_tokenizer
from .config import DEFAULT_INSTRUCTION_FORMAT, LoraSettings, VLAConfig
from .heads import ActionDecoder, LatentActionHead
from .model import VLA, load_vla
from .normalization import ActionNormalizer

__all__ = [
    "VLA",
    "VLAConfig",
    "LoraSettings",
    "ActionDecoder",
    "LatentActionHead",
    "ActionNormalizer",
    "DEFAULT_INSTRUCTION_FORMAT",
    "build_backbone",
    "build_tiny_backbone",
    "build_tiny_tokenizer",
    "load_vla",
]
