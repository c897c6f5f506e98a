"""Latent action model: shapes, objectives, quantisers, dead-code restart, checkpoints, bad input."""

import json

import pytest
import torch

from _lam_helpers import save_tiny_dinov2, tiny_config
from models.lam import (LAMConfig, LatentActionModel, LatentBuffer, LatentQuantizer, compute_losses, load_lam,
                        load_weights, objective_weights, save_lam)

torch.set_num_threads(1)


def frames(b=3, v=2, t=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, v, t, size, size, 3), dtype=torch.uint8, generator=g)


def test_objective_weights():
    assert objective_weights("mvp") == {"self": 0.5, "cross": 0.5, "ac": 0.0, "cycle": 0.0}
    assert objective_weights("single")["cross"] == 0.0
    w = objective_weights("mvp+ac")
    assert w["cross"] == 0.5 and w["ac"] == 1.0
    with pytest.raises(ValueError, match="unknown objective part 'bogus'"):
        objective_weights("mvp+bogus")


def test_encode_decode_shapes_patch_source():
    cfg = tiny_config()
    model = LatentActionModel(cfg)
    obs = model.observe(frames(b=2, v=1, t=1)[:, 0, 0])
    assert obs.shape == (2, 16, 8 * 8 * 3)
    enc = model.encode(obs, obs)
    assert enc["z_q"].shape == (2, cfg.num_tokens, cfg.code_dim)
    assert enc["codes"].shape == (2, cfg.num_tokens) and enc["codes"].dtype == torch.int64
    assert model.decode(obs, enc["z_q"]).shape == obs.shape


@pytest.mark.parametrize("objective", ["single", "mvp", "mvp+ac", "cycle"])
def test_objectives_train_and_report_terms(objective):
    torch.manual_seed(0)
    cfg = tiny_config(objective=objective)
    model = LatentActionModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    fr = frames(t=3 if "ac" in objective else 2)
    buf = LatentBuffer(32)
    losses = []
    for _ in range(4):
        loss, terms, codes = compute_losses(model, fr, cfg.loss_weights, buf)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert codes.shape == (3, 2, cfg.num_tokens)
    assert ("cross" in terms) == ("mvp" in objective)
    assert ("ac" in terms) == ("ac" in objective)
    assert ("cycle" in terms) == (objective == "cycle")
    assert losses[-1] < losses[0]


def test_cross_view_term_uses_other_views_latent():
    """Cross loss = decoding view w with view v's latent: identical views give cross == self."""
    cfg = tiny_config()
    model = LatentActionModel(cfg).eval()
    same = frames(v=1).repeat(1, 2, 1, 1, 1, 1)
    _, terms, _ = compute_losses(model, same, cfg.loss_weights)
    assert terms["cross"] == pytest.approx(terms["self"], rel=1e-5)
    fr = frames()
    _, terms, _ = compute_losses(model, fr, cfg.loss_weights)
    with torch.no_grad():
        obs = [[model.observe(fr[:, v, t]) for t in range(2)] for v in range(2)]
        z = [model.encode(obs[v][0], obs[v][1])["z_q"] for v in range(2)]
        cross = [(model.decode(obs[w][0], z[1 - w]) - obs[w][1]).pow(2).mean() for w in range(2)]
    assert terms["cross"] == pytest.approx(float(sum(cross) / 2), rel=1e-5)


def test_ac_needs_triples():
    cfg = tiny_config(objective="ac")
    with pytest.raises(ValueError, match="triples"):
        compute_losses(LatentActionModel(cfg), frames(t=2), cfg.loss_weights)


def test_dead_code_restart_keeps_running():
    q = LatentQuantizer(8, 4, usage_decay=0.5, dead_code_threshold=0.5, restart_every=2).train()
    z = torch.randn(64, 1, 4) * 0.01 + 5.0  # everything lands on one code
    for _ in range(10):
        q(z)
    first = int(q.restarts)
    assert first > 0
    for _ in range(10):
        q(z + 3.0)
    assert int(q.restarts) > first  # still restarting later in training
    assert (q.codebook.data - 8.0).norm(dim=1).min() < 0.5  # codes moved onto the data


def test_nsvq_is_noisy_in_training_and_exact_in_eval():
    q = LatentQuantizer(4, 3, kind="nsvq")
    z = torch.randn(5, 2, 3, requires_grad=True)
    out = q.train()(z)
    assert out["loss"].item() == 0.0
    out["z_q"].sum().backward()
    assert q.codebook.grad is not None and q.codebook.grad.abs().sum() > 0
    out = q.eval()(z)
    assert torch.equal(out["z_q"], q.codebook[out["codes"]])


def test_wrong_image_size_and_nan_rejected():
    model = LatentActionModel(tiny_config())
    with pytest.raises(ValueError, match="64x64 but the model expects 32x32"):
        model.observe(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        model.observe(torch.full((1, 32, 32, 3), float("nan")))


def test_checkpoint_roundtrip_and_other_config_error(tmp_path):
    cfg = tiny_config(views=["cam_a", "cam_b"])
    model = LatentActionModel(cfg).eval()
    save_lam(model, tmp_path / "ck")
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["views"] == ["cam_a", "cam_b"]
    loaded = load_lam(tmp_path / "ck")
    obs = model.observe(frames(b=2, v=1, t=1)[:, 0, 0])
    with torch.no_grad():
        assert torch.equal(model.encode(obs, obs)["codes"], loaded.encode(obs, obs)["codes"])
    other = LatentActionModel(tiny_config(num_codes=16))
    with pytest.raises(ValueError, match="num_codes: model 16 vs checkpoint 8"):
        load_weights(other, tmp_path / "ck")
    with pytest.raises(FileNotFoundError):
        load_lam(tmp_path / "missing")


def test_bad_config_values():
    with pytest.raises(ValueError, match="feature_source"):
        LAMConfig(feature_source="resnet")
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        LAMConfig(image_size=30, patch_size=8)
    with pytest.raises(ValueError, match="unknown LAM config fields"):
        LAMConfig.from_dict({"bogus": 1})


def test_dinov2_feature_source_from_local_path(tmp_path):
    path = save_tiny_dinov2(tmp_path / "dino")
    cfg = tiny_config(feature_source="dinov2", backbone=str(path), image_size=64)
    model = LatentActionModel(cfg)
    fr = frames(b=2, size=64)
    obs = model.observe(fr[:, 0, 0])
    assert obs.shape == (2, 16, 64)  # 4x4 patches x hidden 64, CLS dropped
    loss, terms, _ = compute_losses(model, fr, cfg.loss_weights)
    loss.backward()
    assert all(p.grad is None for p in model.observer.parameters())  # frozen
    save_lam(model, tmp_path / "ck")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "ck" / "model.safetensors"), "pt") as f:
        assert not any(k.startswith("observer.") for k in f.keys())  # backbone not duplicated
    assert load_lam(tmp_path / "ck").cfg.backbone == str(path)
    with pytest.raises(FileNotFoundError, match="cannot load the feature backbone"):
        LatentActionModel(tiny_config(feature_source="dinov2", backbone=str(tmp_path / "nope"), image_size=64))
