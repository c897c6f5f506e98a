"""Vision-language backbones: a tiny offline configuration, or any transformers
image-text-to-text model by hub id / local path.

The tiny backbone is a LLaVA (SigLIP vision tower + 2-layer Llama, hidden 64)
with a byte-level BPE tokenizer trained in memory on a small corpus of robot
instructions, so tests and the offline demo need no downloads. Being byte-level,
it encodes any text (unknown words just take more tokens).

"tiny-effnet" is the same LLaVA whose vision tower is a frozen ImageNet-pretrained
EfficientNet-Lite0 trunk (``models.pretrained_vision``), cut at stride 16 (112
channels, 128 px images -> 8x8 = 64 tokens per camera); the multi-modal projector
(112 -> 64) and the Llama are trained as usual.
"""

from __future__ import annotations

from pathlib import Path

LATENT_TOKENS_FMT = "<lat_{}>"
TINY_IMAGE_SIZE = 64
TINY_PATCH = 16
EFFNET_IMAGE_SIZE = 128
EFFNET_STRIDE = 16

# A small corpus so BPE learns useful merges for the simulator's instructions.
_TINY_CORPUS = [
    "In: What action should the robot take to put the carrot on the plate?",
    "In: What action should the robot take to stack the green cube on the yellow block?",
    "In: What action should the robot take to put the spoon on the towel?",
    "In: What action should the robot take to put the eggplant in the basket?",
    "Out: pick place move open close gripper left right up down forward backward",
    "red blue green yellow cube block bowl cup table drawer towel spoon carrot plate basket",
]


def latent_token_strings(num_latent_tokens: int) -> list[str]:
    return [LATENT_TOKENS_FMT.format(i) for i in range(num_latent_tokens)]


def build_tiny_tokenizer(num_latent_tokens: int = 4, vocab_size: int = 400):
    """Byte-level BPE trained in memory (deterministic for a fixed corpus)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<image>", *latent_token_strings(num_latent_tokens)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TINY_CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=specials[3:],
    )


# Randomly initialised LLaVA presets: "tiny" for tests and the offline demo, the
# larger ones to time realistic sizes without downloading weights.
PRESETS = {
    "tiny": dict(vision_hidden=64, vision_layers=2, vision_heads=2, image_size=TINY_IMAGE_SIZE, patch=TINY_PATCH,
                 hidden=64, layers=2, heads=2, kv_heads=2, intermediate=128),
    # about 0.5B parameters: SigLIP-B/16 at 224 px + a Qwen2-0.5B-shaped Llama
    "random-0.5b": dict(vision_hidden=768, vision_layers=12, vision_heads=12, image_size=224, patch=16,
                        hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864),
    # the tiny Llama behind a frozen ImageNet EfficientNet-Lite0 trunk (pretrained vision, random language model)
    "tiny-effnet": dict(vision="efficientnet-lite0", image_size=EFFNET_IMAGE_SIZE, patch=EFFNET_STRIDE,
                        hidden=64, layers=2, heads=2, kv_heads=2, intermediate=128),
    # the same, with 2x2 cells of the trunk's 8x8 map averaged into one token: 4x4 = 16 tokens per
    # camera instead of 64, so a sequence of 2 cameras + prompt is 53 tokens long instead of 149
    "tiny-effnet-pool2": dict(vision="efficientnet-lite0", image_size=EFFNET_IMAGE_SIZE, patch=EFFNET_STRIDE, pool=2,
                              hidden=64, layers=2, heads=2, kv_heads=2, intermediate=128),
}


def build_tiny_backbone(num_latent_tokens: int = 4, preset: str = "tiny", vision_weights: str | None = None):
    """(model, processor): a LLaVA (SigLIP or frozen pretrained EfficientNet-Lite0 + Llama), built
    offline; random weights except the EfficientNet trunk's ImageNet ones (``vision_weights``: a
    .pth / .safetensors file, default ``models.pretrained_vision.resolve_weights``)."""
    from transformers import (
        AutoModelForImageTextToText,
        LlamaConfig,
        LlavaConfig,
        LlavaProcessor,
        SiglipVisionConfig,
    )

    p = PRESETS[preset]
    token_patch = p["patch"] * p.get("pool", 1)  # input pixels per image token (side)
    tokenizer = build_tiny_tokenizer(num_latent_tokens)
    if p.get("vision") == "efficientnet-lite0":
        from models.pretrained_vision import trunk_config

        vision = trunk_config(stride=p["patch"], image_size=p["image_size"], pool=p.get("pool", 1))
    else:
        vision = SiglipVisionConfig(
            hidden_size=p["vision_hidden"],
            intermediate_size=4 * p["vision_hidden"] if preset != "tiny" else 2 * p["vision_hidden"],
            num_hidden_layers=p["vision_layers"],
            num_attention_heads=p["vision_heads"],
            image_size=p["image_size"],
            patch_size=p["patch"],
        )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=p["hidden"],
        intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"],
        num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"],
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_seq_length=(p["image_size"] // token_patch) ** 2,
        tie_word_embeddings=False,
    )
    model = AutoModelForImageTextToText.from_config(config)
    if p.get("vision") == "efficientnet-lite0":
        model.model.vision_tower.load_pretrained(vision_weights)
    # the torchvision-based processor: same resize / rescale / normalise (values equal to 1e-7), 2.5x faster than
    # the PIL / NumPy one per batch (12 against 30 ms for 64 images at 128 px), which a training step pays every time
    image_processor = tiny_image_processor(p["image_size"])
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=token_patch,
        vision_feature_select_strategy="full",
        image_token="<image>",
        num_additional_image_tokens=0,
    )
    return model, processor


def tiny_image_processor(image_size: int):
    """The tiny backbones' image processor (rescale to [-1, 1] at ``image_size``): the one the VLA's processor
    holds and the one a LAM on the frozen trunk (``models.lam.features.PretrainedTrunkCells``) uses, so both
    hand the trunk the same bits and share feature-cache keys."""
    from transformers import SiglipImageProcessorFast

    return SiglipImageProcessorFast(size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3,
                                    image_std=[0.5] * 3)


def load_pretrained_backbone(name_or_path: str, num_latent_tokens: int = 4, torch_dtype=None):
    """(model, processor) from a hub id or local directory, with the latent-action
    tokens added to the tokenizer and the embeddings resized to match."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(name_or_path, torch_dtype=torch_dtype)
    processor = AutoProcessor.from_pretrained(name_or_path)
    tokenizer = processor.tokenizer
    added = tokenizer.add_special_tokens(
        {"additional_special_tokens": latent_token_strings(num_latent_tokens)},
        replace_additional_special_tokens=False,
    )
    if added:
        model.resize_token_embeddings(len(tokenizer))
    return model, processor


def register_vision_towers() -> None:
    """Teach transformers' Auto classes the project's own vision towers, so a saved backbone
    config that names one (``vision_config.model_type``) rebuilds offline."""
    from models.pretrained_vision import register

    register()


def build_backbone(spec: str, num_latent_tokens: int = 4, torch_dtype=None):
    """``spec`` is a preset ("tiny", "random-0.5b": random weights; "tiny-effnet": random Llama
    behind a frozen ImageNet EfficientNet-Lite0; all offline) or a hub id / local path of an
    image-text-to-text model."""
    if spec in PRESETS:
        model, processor = build_tiny_backbone(num_latent_tokens, preset=spec)
        return (model.to(torch_dtype) if torch_dtype is not None else model), processor
    if not Path(spec).exists() and "/" not in spec:
        raise ValueError(f"backbone {spec!r}: not a preset {sorted(PRESETS)}, not a local directory and not a hub id (owner/name)")
    return load_pretrained_backbone(spec, num_latent_tokens, torch_dtype=torch_dtype)


def frozen_vision_tower(model_config) -> str | None:
    """"efficientnet-lite0/stride16" when the backbone's vision tower is the project's frozen
    pretrained trunk, else None."""
    from models.pretrained_vision import MODEL_TYPE, trunk_tag

    vision = getattr(model_config, "vision_config", None)
    if getattr(vision, "model_type", None) != MODEL_TYPE:
        return None
    return trunk_tag(vision)


def image_placeholder(model_config, processor) -> str:
    """The text that stands for one image in the prompt, per model family."""
    model_type = getattr(model_config, "model_type", "")
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        return "<|vision_start|><|image_pad|><|vision_end|>"
    token = getattr(processor, "image_token", None)
    if token is None:
        raise ValueError(f"cannot tell the image token of backbone type {model_type!r}")
    return token


def image_token_id(model_config) -> int:
    for name in ("image_token_id", "image_token_index"):
        value = getattr(model_config, name, None)
        if value is not None:
            return int(value)
    raise ValueError(f"backbone config {type(model_config).__name__} names no image token id")


def image_tokens_per_image(model_config) -> int:
    """How many vision tokens one image becomes (LLaVA's ``image_seq_length``), or 0 where the
    count varies with the image (e.g. Qwen2-VL's dynamic resolution)."""
    return int(getattr(model_config, "image_seq_length", 0) or 0)


def text_hidden_size(model_config) -> int:
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    return int(text.hidden_size)
