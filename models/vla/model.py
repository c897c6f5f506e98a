"""The vision-language-action model: backbone + latent-action head + action decoder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import (
    build_backbone,
    frozen_vision_tower,
    image_placeholder,
    image_token_id,
    image_tokens_per_image,
    latent_token_strings,
    register_vision_towers,
    text_hidden_size,
)
from .config import LoraSettings, VLAConfig
from .heads import ActionDecoder, LatentActionHead
from .normalization import ActionNormalizer, StateNormalizer

log = logging.getLogger(__name__)

CONFIG_FILE = "vla_config.json"
WEIGHTS_FILE = "model.safetensors"
STATS_FILE = "action_stats.json"
STATE_STATS_FILE = "state_stats.json"
BACKBONE_DIR = "backbone"
# Language models whose attention mask is plain causal + padding (no sliding window, no bidirectional spans):
# for these the model passes a ready 4-D mask to SDPA (see VLA.padded_causal_mask).
PLAIN_CAUSAL_TEXT_MODELS = ("llama",)


class VLA(nn.Module):
    """Prompt = one image placeholder per camera + the instruction format + the
    latent-action placeholder tokens. The backbone's last hidden states at the image
    tokens are the vision embeddings, those at the placeholders the latent-action
    embeddings: the latent head reads the latter (stage 1), the action decoder
    attends over both (stage 2)."""

    def __init__(self, config: VLAConfig, backbone: nn.Module, processor, normalizer: ActionNormalizer | None = None,
                 state_normalizer: StateNormalizer | None = None):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.processor = processor
        self.normalizer = normalizer
        self.state_normalizer = state_normalizer
        self._instruction_tokens: dict[str, int] = {}  # check_instruction's memo: training asks 32 times a step
        self._prompt_tokens: dict[tuple, dict[str, list[int]]] = {}  # _tokenized_prompts' memo
        if config.image_size is None:
            config.image_size = processor_image_size(processor)
        base_config = backbone.config
        config.vision_tower = frozen_vision_tower(base_config)
        hidden = text_hidden_size(base_config)
        if config.vision_positions is None:
            config.vision_positions = vision_position_count(base_config, config.cameras)
        self.latent_head = LatentActionHead(hidden, config.codebook_size)
        self.action_decoder = ActionDecoder(
            hidden,
            config.chunk_size,
            config.action_dim,
            dim=config.decoder_dim,
            heads=config.decoder_heads,
            layers=config.decoder_layers,
            state_dim=config.state_dim,
            vision_positions=config.vision_positions,
        )
        self._placeholder = image_placeholder(base_config, processor)
        self._image_token_id = image_token_id(base_config)
        tokenizer = processor.tokenizer
        latent_ids = tokenizer.convert_tokens_to_ids(latent_token_strings(config.num_latent_tokens))
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in latent_ids:
            raise ValueError("the backbone tokenizer lacks the latent-action tokens")
        self.register_buffer("_latent_ids", torch.tensor(latent_ids, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def create(cls, config: VLAConfig, torch_dtype=None) -> VLA:
        backbone, processor = build_backbone(config.backbone, config.num_latent_tokens, torch_dtype=torch_dtype)
        return cls(config, backbone, processor)

    def base_model(self) -> nn.Module:
        """The transformers model (inside the peft wrapper when LoRA is applied)."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    @property
    def has_lora(self) -> bool:
        return hasattr(self.backbone, "peft_config")

    def apply_lora(self, settings: LoraSettings) -> None:
        """Wrap the backbone with peft LoRA adapters; base weights are frozen."""
        from peft import LoraConfig, get_peft_model

        if self.has_lora:
            raise ValueError("LoRA is already applied to this VLA")
        lora = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=settings.target_modules,
        )
        self.backbone = get_peft_model(self.backbone, lora)
        self.config.lora = settings

    def merge_lora(self) -> None:
        """Fold the adapters into the base weights (faster inference)."""
        if self.has_lora:
            self.backbone = self.backbone.merge_and_unload()

    @property
    def device(self) -> torch.device:
        return next(self.action_decoder.parameters()).device

    # ------------------------------------------------------------------ inputs
    def max_instruction_tokens(self) -> int:
        return self.config.max_instruction_tokens

    def check_instruction(self, instruction) -> str:
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be a str, got {type(instruction).__name__}")
        text = instruction.strip()
        if not text:
            raise ValueError("instruction is empty")
        n = self._instruction_tokens.get(text)
        if n is None:
            n = self._instruction_tokens[text] = len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        if n > self.config.max_instruction_tokens:
            raise ValueError(
                f"instruction is too long: {n} tokens > max_instruction_tokens={self.config.max_instruction_tokens} "
                f"({text[:60]!r}...)"
            )
        return text

    def prompt(self, instruction: str) -> str:
        return (
            self._placeholder * len(self.config.cameras)
            + self.config.instruction_format.format(instruction=instruction)
            + "".join(latent_token_strings(self.config.num_latent_tokens))
        )

    def prepare_inputs(self, images: list[dict[str, np.ndarray]], instructions: list[str]) -> dict[str, torch.Tensor]:
        """Batch of per-camera uint8 (H, W, 3) images of any size + instructions -> backbone tensors (CPU).

        Every image goes through the project's one resize path (``models.image_prep``) to
        ``config.image_size``, in training and at run time alike."""
        from models.image_prep import resize_images

        if len(images) != len(instructions):
            raise ValueError(f"{len(images)} image sets for {len(instructions)} instructions")
        texts = [self.prompt(self.check_instruction(t)) for t in instructions]
        per_sample = []
        for sample in images:
            missing = [c for c in self.config.cameras if c not in sample]
            if missing:
                raise ValueError(f"images lack camera(s) {missing}; this model expects {self.config.cameras}")
            per_sample.append([resize_images(sample[c], self.config.image_size, name=f"camera {c!r}")
                               for c in self.config.cameras])
        batch = {**self.processor.image_processor(per_sample, return_tensors="pt"),
                 **self._tokenized_prompts(texts, per_sample[0])}
        return {k: v for k, v in batch.items() if k != "token_type_ids"}

    def _tokenized_prompts(self, texts: list[str], sample_images: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The processor's text outputs for ``texts``, padded by the tokenizer as the processor pads them.

        A prompt's tokens (image placeholders expanded to the tokens per image) depend only on the prompt and
        the image size, and training repeats a few prompts: each is processed once, with a sample's images, and
        reused; the tokenizer pads them. The processor's text path was a third of ``prepare_inputs`` (20 of about
        55 ms for 32 samples)."""
        memo = self._prompt_tokens
        shapes = tuple(img.shape for img in sample_images)
        distinct = list(dict.fromkeys(texts))
        for text in distinct:
            if (text, shapes) not in memo:
                out = self.processor(text=[text], images=[sample_images])
                memo[(text, shapes)] = {k: list(out[k][0]) for k in ("input_ids", "attention_mask") if k in out}
        # padding to the batch's longest prompt depends only on which prompts it holds: pad those, then index
        tokenizer = self.processor.tokenizer
        # pad() logs a hint to tokenise and pad in one call; the prompts are tokenised once above, so only padding is left
        tokenizer.deprecation_warnings["Asking-to-pad-a-fast-tokenizer"] = True
        padded = tokenizer.pad([memo[(t, shapes)] for t in distinct], padding=True, return_tensors="pt")
        rows = torch.tensor([distinct.index(t) for t in texts])
        return {k: v[rows] for k, v in padded.items()}

    # ------------------------------------------------------------------ forward
    def encode(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(vision_hidden (B, Nv, H), latent_hidden (B, L, H)) in float32."""
        base = self.base_model()
        dtype = next(base.parameters()).dtype
        inputs = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in inputs.items()}
        mask = self.padded_causal_mask(inputs.get("attention_mask"))
        out = base.model(**({**inputs, "attention_mask": mask} if mask is not None else inputs), return_dict=True)
        hidden = out.last_hidden_state.float()
        ids = inputs["input_ids"]
        batch = ids.shape[0]
        vision_mask = ids == self._image_token_id
        latent_mask = torch.isin(ids, self._latent_ids)
        vision = hidden[vision_mask].view(batch, -1, hidden.shape[-1])
        latent = hidden[latent_mask].view(batch, self.config.num_latent_tokens, hidden.shape[-1])
        return vision, latent

    def padded_causal_mask(self, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """The 4-D boolean SDPA mask (B, 1, T, T) of a padded batch: causal and not attending to padding, or None
        where transformers should build the mask itself (no padding, another attention implementation, or a
        language model whose mask is not plain causal).

        It is the mask transformers builds (``masking_utils.sdpa_mask``, equal element for element, so the model's
        outputs are bit-identical), but made by broadcasting: transformers builds it with a vmapped index function
        (6.8 ms in torch's profiler per step of the demo's finetuning, batch 32, 153 tokens); the step takes 3-4 ms
        (3-4 %) less (docs/vla.md, "The finetuning step"). A batch without
        padding (every online step) keeps transformers' path, which skips the mask and runs SDPA's causal kernel.

        On a GPU, ``attention_mask.all()`` reads one value back from the device. Transformers' own path reads the same
        value (``masking_utils._ignore_causal_mask_sdpa``), so a padded batch costs no extra synchronisation and an
        unpadded one costs a second read right after the first, with nothing left queued on the stream to wait for."""
        text = getattr(self.base_model().config, "text_config", None)
        if (attention_mask is None or attention_mask.dim() != 2 or text is None
                or getattr(text, "model_type", None) not in PLAIN_CAUSAL_TEXT_MODELS
                or getattr(text, "_attn_implementation", None) != "sdpa" or bool(attention_mask.all())):
            return None
        n = attention_mask.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=attention_mask.device).tril()
        return causal[None, None] & attention_mask.bool()[:, None, None, :]

    def prepare_state(self, states) -> torch.Tensor | None:
        """Raw robot states (B, state_dim) -> normalised tensor, or None for a model without state input."""
        if not self.config.state_dim:
            return None
        if states is None:
            raise ValueError(f"this policy needs the robot state ({self.config.state_dim} values: x, y, z, roll, pitch, "
                             "yaw, gripper) with every observation")
        if self.state_normalizer is None:
            raise ValueError("this checkpoint takes a robot state but has no state statistics (state_stats.json)")
        states = np.asarray(states, dtype=np.float32).reshape(-1, self.config.state_dim)
        if not np.isfinite(states).all():
            raise ValueError(f"robot state contains NaN or inf: {states.tolist()}")
        return torch.from_numpy(self.state_normalizer.normalize(states))

    def forward(
        self,
        inputs: dict[str, torch.Tensor],
        codes: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        action_mask: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses: cross-entropy on latent codes (B, L) if given; L1 (or MSE, ``config.action_loss``)
        on normalised action chunks (B, chunk, D) if given (``action_mask`` (B, chunk) marks real
        steps). ``state``: normalised robot state (B, state_dim) when the model takes one."""
        vision, latent = self.encode(inputs)
        out: dict[str, torch.Tensor] = {"latent_logits": self.latent_head(latent)}
        loss = vision.new_zeros(())
        if codes is not None:
            out["latent_loss"] = F.cross_entropy(out["latent_logits"].flatten(0, 1), codes.flatten().long())
            loss = loss + self.config.latent_loss_weight * out["latent_loss"]
        if actions is not None or self.config.stage == "action":
            pred = self.action_decoder(vision, latent, state)
            out["actions"] = pred
            if actions is not None:
                diff = pred - actions
                err = (diff.abs() if self.config.action_loss == "l1" else diff.square()).mean(-1)  # (B, chunk)
                if action_mask is None:
                    action_mask = torch.ones_like(err)
                action_mask = action_mask.to(err.dtype)
                out["action_loss"] = (err * action_mask).sum() / action_mask.sum().clamp_min(1.0)
                loss = loss + out["action_loss"]
        out["loss"] = loss
        return out

    @torch.no_grad()
    def predict_chunk_normalized(self, images: list[dict[str, np.ndarray]], instructions: list[str],
                                 states=None) -> np.ndarray:
        """(B, chunk, D) in normalised space (no clipping, NaN passes through); ``states``: raw
        robot states (B, state_dim) for a model with state input."""
        state = self.prepare_state(states)
        inputs = {k: v.to(self.device) for k, v in self.prepare_inputs(images, instructions).items()}
        vision, latent = self.encode(inputs)
        return self.action_decoder(vision, latent, None if state is None else state.to(self.device)).float().cpu().numpy()

    @torch.no_grad()
    def predict_codes(self, images: list[dict[str, np.ndarray]], instructions: list[str]) -> np.ndarray:
        inputs = {k: v.to(self.device) for k, v in self.prepare_inputs(images, instructions).items()}
        _, latent = self.encode(inputs)
        return self.latent_head(latent).argmax(-1).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str | Path) -> Path:
        """safetensors weights + JSON config + JSON action stats + backbone config/processor (JSON)."""
        from safetensors.torch import save_model

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / CONFIG_FILE)
        save_model(self, str(directory / WEIGHTS_FILE))
        self.base_model().config.save_pretrained(directory / BACKBONE_DIR)
        self.processor.save_pretrained(directory / BACKBONE_DIR)
        if self.normalizer is not None:
            self.normalizer.save(directory / STATS_FILE)
        if self.state_normalizer is not None:
            self.state_normalizer.save(directory / STATE_STATS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu", torch_dtype=None) -> VLA:
        """Rebuild a VLA from a checkpoint directory in one call (no hub access)."""
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE, BACKBONE_DIR):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory} is not a VLA checkpoint: {name} is missing")
        config = VLAConfig.load(directory / CONFIG_FILE)
        register_vision_towers()  # a frozen pretrained trunk is rebuilt from the config; its weights are in WEIGHTS_FILE
        backbone_config = AutoConfig.from_pretrained(directory / BACKBONE_DIR)
        backbone = AutoModelForImageTextToText.from_config(backbone_config)
        processor = AutoProcessor.from_pretrained(directory / BACKBONE_DIR)
        normalizer = ActionNormalizer.load(directory / STATS_FILE) if (directory / STATS_FILE).exists() else None
        state_normalizer = (StateNormalizer.load(directory / STATE_STATS_FILE)
                            if (directory / STATE_STATS_FILE).exists() else None)
        lora = config.lora
        config.lora = None
        model = cls(config, backbone, processor, normalizer, state_normalizer)
        if lora is not None:
            model.apply_lora(lora)
        missing, unexpected = load_model(model, str(directory / WEIGHTS_FILE), strict=False)
        missing = [k for k in missing if not k.startswith("_")]
        if missing or unexpected:
            raise ValueError(
                f"{directory / WEIGHTS_FILE} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        if torch_dtype is not None:
            model.backbone.to(torch_dtype)
        return model.to(device)


def vision_position_count(backbone_config, cameras) -> int:
    """How many vision-token positions the action decoder learns: cameras x tokens per image
    (0 for a backbone whose token count varies with the image)."""
    return image_tokens_per_image(backbone_config) * len(cameras)


def processor_image_size(processor) -> int:
    """The square input size of a backbone's image processor (what the vision tower was built for)."""
    size = getattr(getattr(processor, "image_processor", None), "size", None) or {}
    for key in ("height", "shortest_edge"):
        if key in size:
            return int(size[key])
    raise ValueError(f"cannot tell the input image size of processor {type(processor).__name__} (size={size})")


def load_vla(directory: str | Path, device: str | torch.device = "cpu", torch_dtype=None) -> VLA:
    """Load a VLA checkpoint in one call."""
    return VLA.load(directory, device=device, torch_dtype=torch_dtype)
