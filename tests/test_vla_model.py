"""The VLA model: tiny backbone, heads, LoRA, normalisation, checkpoints."""

import copy
import json

import numpy as np
import pytest
import torch

from _vla_helpers import CAMERAS, fake_actions, fake_images
from models.vla import VLA, ActionNormalizer, LoraSettings, VLAConfig, load_vla

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VLA.create(VLAConfig(cameras=list(CAMERAS), stage="action"))
    m.normalizer = ActionNormalizer.fit(fake_actions())
    return m


def test_pixels_are_the_siglip_values_of_the_resized_frames(model, tmp_path):
    """The image path the model trains and runs on: any camera size -> models.image_prep's resize to the
    model's size -> the processor's [-1, 1] scaling ((u / 255 - 0.5) / 0.5), the same after a checkpoint."""
    from models.image_prep import resize_images

    images = fake_images(3, size=50)
    expected = torch.stack([torch.from_numpy(resize_images(images[c], model.config.image_size)).permute(2, 0, 1)
                            for c in CAMERAS]).float() / 127.5 - 1.0
    torch.testing.assert_close(model.prepare_inputs([images], ["pick"])["pixel_values"], expected, atol=1e-6, rtol=0)
    model.save(tmp_path / "ckpt")
    torch.testing.assert_close(VLA.load(tmp_path / "ckpt").prepare_inputs([images], ["pick"])["pixel_values"], expected,
                               atol=1e-6, rtol=0)


def test_batched_inputs_equal_the_processors_own(model):
    """prepare_inputs reuses each prompt's tokens and pads by index: the tensors must be exactly what the
    processor makes of the whole batch, for mixed prompt lengths (padding) and repeated prompts."""
    from models.image_prep import resize_images

    instructions = ["pick", "stack the green cube on the yellow cube", "pick", "put carrot on plate"]
    images = [fake_images(i, size=50) for i in range(len(instructions))]
    for batch in (instructions, instructions[::-1], instructions[:1] * 3):
        sets = images[:len(batch)]
        got = model.prepare_inputs(sets, batch)
        resized = [[resize_images(s[c], model.config.image_size) for c in model.config.cameras] for s in sets]
        expected = model.processor(text=[model.prompt(t) for t in batch], images=resized, return_tensors="pt", padding=True)
        assert sorted(got) == ["attention_mask", "input_ids", "pixel_values"]
        for key, value in got.items():
            assert torch.equal(value, expected[key]), key


def test_padded_batches_get_transformers_own_causal_mask_and_the_same_outputs(model, monkeypatch):
    """VLA.padded_causal_mask replaces transformers' vmapped mask construction for padded training batches: the
    mask must equal ``masking_utils.sdpa_mask``'s element for element, the encoder's outputs and gradients must be
    bit-identical to transformers' own path, and unpadded batches (the online step) must keep transformers' path."""
    from transformers.masking_utils import causal_mask_function, sdpa_mask

    instructions = ["pick", "stack the green cube on the yellow cube", "put carrot on plate"]
    inputs = model.prepare_inputs([fake_images(i) for i in range(3)], instructions)
    pad = inputs["attention_mask"]
    assert not bool(pad.all())  # the prompts differ in length
    n = pad.shape[1]
    theirs = sdpa_mask(batch_size=3, cache_position=torch.arange(n), kv_length=n, kv_offset=0,
                       mask_function=causal_mask_function, attention_mask=pad.bool())
    ours = model.padded_causal_mask(pad)
    assert ours.dtype == torch.bool and torch.equal(ours, theirs)
    assert model.padded_causal_mask(torch.ones_like(pad)) is None

    def encode_and_grads():
        model.zero_grad()
        vision, latent = model.encode(inputs)
        (vision.square().sum() + latent.sum()).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        return vision.detach(), latent.detach(), grads

    with_ours = encode_and_grads()
    monkeypatch.setattr(VLA, "padded_causal_mask", lambda self, attention_mask: None)
    with_theirs = encode_and_grads()
    model.zero_grad()
    assert torch.equal(with_ours[0], with_theirs[0]) and torch.equal(with_ours[1], with_theirs[1])
    assert len(with_ours[2]) == len(with_theirs[2]) > 0
    assert all(torch.equal(a, b) for a, b in zip(with_ours[2], with_theirs[2]))


def test_forward_shapes_and_losses(model):
    inputs = model.prepare_inputs([fake_images(0), fake_images(1)], ["put carrot on plate", "stack the green cube"])
    out = model(inputs, codes=torch.tensor([[1, 2, 3, 4], [0, 0, 0, 15]]), actions=torch.zeros(2, 5, 7))
    assert out["latent_logits"].shape == (2, 4, 16)
    assert out["actions"].shape == (2, 5, 7)
    assert out["loss"].item() == pytest.approx(out["latent_loss"].item() + out["action_loss"].item(), rel=1e-5)
    vision, latent = model.encode(inputs)
    assert vision.shape == (2, len(CAMERAS) * 16, 64) and latent.shape == (2, 4, 64)


def test_action_mask_ignores_padded_steps(model):
    inputs = model.prepare_inputs([fake_images(0)], ["stack"])
    target = torch.zeros(1, 5, 7)
    mask = torch.tensor([[1, 1, 0, 0, 0]])
    a = model(inputs, actions=target, action_mask=mask)["action_loss"]
    target[0, 2:] = 100.0
    b = model(inputs, actions=target, action_mask=mask)["action_loss"]
    assert a.item() == pytest.approx(b.item())


def test_lora_defaults_and_trainable_parameters():
    assert LoraSettings().rank == 32 and LoraSettings().alpha == 16
    m = VLA.create(VLAConfig(cameras=["third_person"], stage="action"))
    m.apply_lora(LoraSettings(rank=8, alpha=16))
    trainable = [n for n, p in m.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with pytest.raises(ValueError, match="already"):
        m.apply_lora(LoraSettings())


def test_checkpoint_roundtrip_is_exact_and_pickle_free(model, tmp_path):
    model.apply_lora(LoraSettings(rank=4, alpha=8)) if not model.has_lora else None
    model.eval()
    path = model.save(tmp_path / "ckpt")
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {"model.safetensors", "vla_config.json", "action_stats.json", "backbone/config.json"} <= files
    assert all(f.endswith((".json", ".safetensors")) for f in files), files
    cfg = json.loads((path / "vla_config.json").read_text())
    assert cfg["robot"] == "widowx" and cfg["action_dim"] == 7 and "{instruction}" in cfg["instruction_format"]
    assert cfg["lora"]["rank"] == 4
    loaded = load_vla(path).eval()
    imgs, text = [fake_images(3)], ["put the eggplant in the basket"]
    np.testing.assert_allclose(loaded.predict_chunk_normalized(imgs, text), model.predict_chunk_normalized(imgs, text), atol=1e-6)
    loaded.merge_lora()
    np.testing.assert_allclose(loaded.predict_chunk_normalized(imgs, text), model.predict_chunk_normalized(imgs, text), atol=1e-5)
    np.testing.assert_array_equal(loaded.normalizer.q01, model.normalizer.q01)


def test_load_rejects_incomplete_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="vla_config.json"):
        load_vla(tmp_path)


def test_normalizer_maps_percentiles_and_leaves_gripper():
    actions = fake_actions(1000, seed=1)
    norm = ActionNormalizer.fit(actions)
    n = norm.normalize(actions)
    assert n[:, :6].min() == -1.0 and n[:, :6].max() == 1.0
    for d in range(6):  # q01 -> -1, q99 -> +1
        x = np.zeros((1, 7), np.float32)
        x[0, d] = norm.q99[d]
        assert norm.normalize(x)[0, d] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(n[:, 6], actions[:, 6])
    inside = (actions[:, :6] >= norm.q01) & (actions[:, :6] <= norm.q99)
    np.testing.assert_allclose(norm.unnormalize(n)[:, :6][inside], actions[:, :6][inside], atol=1e-5)
    again = ActionNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(again.q99, norm.q99)
    with pytest.raises(ValueError, match="NaN"):
        ActionNormalizer.fit(np.full((4, 7), np.nan))


def test_config_validation(tmp_path):
    with pytest.raises(ValueError, match="instruction"):
        VLAConfig(instruction_format="no placeholder")
    with pytest.raises(ValueError, match="camera"):
        VLAConfig(cameras=[])
    (tmp_path / "c.json").write_text(json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match="bogus"):
        VLAConfig.load(tmp_path / "c.json")


def test_a_few_steps_fit_a_tiny_batch():
    torch.manual_seed(0)
    m = VLA.create(VLAConfig(cameras=["third_person"], stage="action", chunk_size=2))
    inputs = m.prepare_inputs([fake_images(0, ["third_person"]), fake_images(1, ["third_person"])], ["stack", "put"])
    codes = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    actions = torch.tensor([[[0.5] * 7] * 2, [[-0.5] * 7] * 2])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = m(inputs, codes=codes, actions=actions)["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_action_decoder_sees_where_a_vision_token_is(model):
    """Swapping two vision tokens is a different scene (the object moved); without position
    embeddings cross-attention could not tell the two apart."""
    decoder = copy.deepcopy(model.action_decoder)  # zeroed below; the module's fixture stays intact
    n = model.config.vision_positions
    assert n == len(CAMERAS) * 16  # 64 px / 16 px patches = 4 x 4 tokens per camera
    torch.manual_seed(1)
    vision, latent = torch.randn(1, n, 64), torch.randn(1, 4, 64)
    swapped = vision.clone()
    swapped[:, [0, n - 1]] = vision[:, [n - 1, 0]]
    with torch.no_grad():
        assert not torch.allclose(decoder(vision, latent), decoder(swapped, latent), atol=1e-4)
        decoder.vision_pos.zero_()  # the same decoder, position-blind: the swap is invisible
        assert torch.allclose(decoder(vision, latent), decoder(swapped, latent), atol=1e-5)
        with pytest.raises(ValueError, match=f"got {n - 1} vision tokens but learned positions for {n}"):
            decoder(vision[:, 1:], latent)


def test_decoder_cross_attention_equals_torch_multihead_attention():
    """The decoder's few-query attention is nn.MultiheadAttention's function on the module's own parameters
    (outputs and gradients), so checkpoints trained with either load and act the same."""
    from torch import nn

    from models.vla.heads import few_query_cross_attention

    torch.manual_seed(0)
    attn = nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():  # non-zero biases: the key bias must cancel, the value bias must pass through
        attn.in_proj_bias.normal_()
        attn.out_proj.bias.normal_()
    queries = torch.randn(3, 5, 32, requires_grad=True)
    context = torch.randn(3, 17, 32, requires_grad=True)
    reference, _ = attn(queries, context, context, need_weights=False)
    ours = few_query_cross_attention(attn, queries, context)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    wrt = [queries, context, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight]
    grad_out = torch.randn_like(reference)
    for ref, got in zip(torch.autograd.grad(reference, wrt, grad_out), torch.autograd.grad(ours, wrt, grad_out)):
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    attn.dropout = 0.1
    with pytest.raises(ValueError, match="dropout"):
        few_query_cross_attention(attn, queries, context)


def test_a_checkpoint_saved_before_vision_positions_loads_without_them(tmp_path):
    m = VLA.create(VLAConfig(cameras=["third_person"], stage="action", vision_positions=0))
    assert m.action_decoder.vision_pos is None
    path = m.save(tmp_path / "old")
    cfg = json.loads((path / "vla_config.json").read_text())
    del cfg["vision_positions"]  # as written before the field existed
    (path / "vla_config.json").write_text(json.dumps(cfg))
    assert load_vla(path).config.vision_positions == 0
