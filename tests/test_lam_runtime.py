"""Online latent-action runtime: load once, batched no-grad inference, fusion, bad input."""

import numpy as np
import pytest
import torch

from _lam_helpers import tiny_config
from lam_ros.latent_actions import LatentActionRuntime
from models.lam import LatentActionModel, save_lam

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "checkpoint"
    save_lam(LatentActionModel(tiny_config(views=["a", "b", "c"])), path)
    return LatentActionRuntime.from_checkpoint(path)


def imgs(b, seed):
    return np.random.default_rng(seed).integers(0, 256, (b, 32, 32, 3), dtype=np.uint8)


def test_infer_shapes_types_and_batch_consistency(runtime):
    ft = {"a": imgs(3, 0), "b": imgs(3, 1)}
    ftk = {"a": imgs(3, 2), "b": imgs(3, 3)}
    codes, emb = runtime.infer(ft, ftk)
    assert codes.shape == (3, 2) and codes.dtype == np.int64
    assert emb.shape == (3, 2, 16) and emb.dtype == np.float32
    # embeddings are the codebook entries of the codes
    cb = runtime.model.quantizer.codebook.detach().numpy()
    assert np.allclose(emb, cb[codes])
    # batched result equals per-sample results
    c1, e1 = runtime.infer({k: v[1:2] for k, v in ft.items()}, {k: v[1:2] for k, v in ftk.items()})
    assert np.array_equal(c1[0], codes[1]) and np.allclose(e1[0], emb[1], atol=1e-5)


def test_mean_fusion_matches_model_and_first_view(runtime):
    m = runtime.model
    ft = {"a": imgs(2, 4), "b": imgs(2, 5), "c": imgs(2, 6)}
    ftk = {"a": imgs(2, 7), "b": imgs(2, 8), "c": imgs(2, 9)}
    with torch.no_grad():
        zs = [m.encode_continuous(m.observe(torch.from_numpy(ft[v])), m.observe(torch.from_numpy(ftk[v])))
              for v in "abc"]
        expected = m.quantizer.distances(torch.stack(zs).mean(0)).argmin(-1).numpy()
        first = m.quantizer.distances(zs[0]).argmin(-1).numpy()
    assert np.array_equal(runtime.infer(ft, ftk)[0], expected)
    per_view = runtime.infer_views(ft, ftk)
    assert np.array_equal(per_view["a"][0], first)


def test_bad_inputs(runtime):
    with pytest.raises(ValueError, match="view 'a'.*expected uint8"):
        runtime.infer({"a": imgs(1, 0).astype(np.float32)}, {"a": imgs(1, 0)})
    with pytest.raises(ValueError, match="view 'a'.*shape"):
        runtime.infer({"a": imgs(1, 0)[..., :2]}, {"a": imgs(1, 0)[..., :2]})
    with pytest.raises(ValueError, match="views differ"):
        runtime.infer({"a": imgs(1, 0)}, {"b": imgs(1, 0)})
    with pytest.raises(ValueError, match="fusion"):
        LatentActionRuntime(runtime.model, fusion="max")
    with pytest.raises(FileNotFoundError):
        LatentActionRuntime.from_checkpoint("/nonexistent/ck")


def test_camera_frames_of_any_size_are_resized_as_in_training(runtime):
    """A 640x480-style camera frame gives exactly what the same frame resized by the shared
    training path (models.image_prep.resize_images) gives: no second resize implementation."""
    from models.image_prep import resize_images

    rng = np.random.default_rng(5)
    big_t = {v: rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8) for v in ("a", "b")}
    big_tk = {v: rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8) for v in ("a", "b")}
    codes, emb = runtime.infer(big_t, big_tk)
    small_t = {v: resize_images(x, 32) for v, x in big_t.items()}
    small_tk = {v: resize_images(x, 32) for v, x in big_tk.items()}
    ref_codes, ref_emb = runtime.infer(small_t, small_tk)
    assert np.array_equal(codes, ref_codes) and np.allclose(emb, ref_emb)
    # a single (H, W, 3) frame per view works too
    c1, _ = runtime.infer({v: x[0] for v, x in big_t.items()}, {v: x[0] for v, x in big_tk.items()})
    assert np.array_equal(c1[0], codes[0])


def test_pipeline_loader_gives_the_same_runtime(tmp_path):
    """What the ROS latent-action node and `lam-ros run` load is this runtime, from the same checkpoint."""
    from lam_ros.pipeline import load_latent_model

    torch.manual_seed(0)
    path = tmp_path / "checkpoint"
    save_lam(LatentActionModel(tiny_config(views=["a", "b"])), path)
    loaded = load_latent_model(str(path), device="cpu")
    reference = LatentActionRuntime.from_checkpoint(path)
    ft, ftk = {"a": imgs(1, 0), "b": imgs(1, 1)}, {"a": imgs(1, 2), "b": imgs(1, 3)}
    np.testing.assert_array_equal(loaded.infer(ft, ftk)[0], reference.infer(ft, ftk)[0])
