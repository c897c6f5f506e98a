"""Action-centricity estimators on data with known answers."""

import math

import numpy as np
import pytest
import torch

from training import lam_metrics as M

torch.set_num_threads(1)


def correlated_gaussians(n: int, dims: int, rho: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, dims))
    return x, y, -0.5 * math.log2(1 - rho**2) * dims


@pytest.mark.parametrize("rho,dims", [(0.9, 1), (0.8, 2), (0.0, 2)])
def test_ksg_matches_analytic_mi(rho, dims):
    x, y, truth = correlated_gaussians(1500, dims, rho)
    est = M.ksg_mi(x, y, k=4)
    assert abs(est - truth) < 0.12, (est, truth)


def test_ksg_shuffled_pairing_is_about_zero_and_projection_keeps_signal():
    x, y, truth = correlated_gaussians(1500, 2, 0.9)
    # a redundant 32-D latent that linearly contains x: projection must keep much of the information
    z = x @ np.random.default_rng(1).standard_normal((2, 32))
    rep = M.ksg_report(z, y, k=4, proj_dim=4)
    assert rep["proj_dim"] == 4
    assert rep["mi_bits"] > 0.7 * truth
    assert abs(rep["shuffled_bits"]) < 0.1


def test_barber_agakov_and_mine_on_gaussians():
    x, y, truth = correlated_gaussians(2000, 2, 0.9)
    ba = M.barber_agakov_mi(x, y, steps=400, hidden=32)
    assert abs(ba - truth) < 0.3, (ba, truth)
    mine = M.mine_mi(x, y, steps=500, hidden=64)
    assert 0.5 * truth < mine < truth + 0.3, (mine, truth)
    rep = M.variational_report(x, y, steps=150)
    for name in ("barber_agakov", "mine"):
        assert abs(rep[name]["shuffled_bits"]) < 0.15, (name, rep[name])


def test_linear_probe_perfect_linear_latent_and_shuffle():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((600, 7))
    z = np.concatenate([a @ rng.standard_normal((7, 12)), np.zeros((600, 4))], 1)
    rep = M.linear_probe_nmse(z, a, pca_dim=7)
    assert rep["nmse"] < 1e-8
    assert rep["shuffled_nmse"] > 0.9
    # PCA to fewer dims than the action's rank must lose information
    assert M.linear_probe_nmse(z, a, pca_dim=3)["nmse"] > 0.3


def test_net_actions_sums_pose_and_keeps_last_gripper():
    acts = np.zeros((4, 3, 7))
    acts[:, :, 0] = np.arange(4)[:, None]  # net dx = 3 * i
    acts[:, :, 6] = [[1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 1]]
    net = M.net_actions(acts)
    assert net.shape == (4, 7)
    assert np.corrcoef(net[:, 0], np.arange(4))[0, 1] > 0.999
    assert np.allclose(np.sign(net[:, 6]), [-1, 1, -1, 1])
    with pytest.raises(ValueError, match="actions must be"):
        M.net_actions(np.zeros((4, 7)))


def test_ac_structure_on_additive_latents():
    rng = np.random.default_rng(0)
    z_ij, z_jk = rng.standard_normal((200, 8)), rng.standard_normal((200, 8))
    out = M.ac_structure(z_ij, z_jk, z_ij + z_jk, z_ii=np.zeros((200, 8)), z_ji=-z_ij,
                         state_delta=z_ij * 2.0)
    assert out["additivity_residual"] < 1e-12 and out["identity"] == 0 and out["inverse"] == 0
    assert out["norm_state_r"] > 0.999
    bad = M.ac_structure(z_ij, z_jk, rng.standard_normal((200, 8)))
    assert bad["additivity_residual"] > 1.0


def test_view_leakage_probe_detects_view_code_and_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    leaky = rng.standard_normal((400, 6)) + labels[:, None] * 3.0
    clean = rng.standard_normal((400, 6))
    assert M.view_leakage_probe(leaky, labels)["accuracy"] > 0.95
    rep = M.view_leakage_probe(clean, labels)
    assert abs(rep["accuracy"] - 0.5) < 0.15 and rep["num_views"] == 2


def test_codebook_stats():
    codes = np.array([[0, 1], [0, 1], [2, 3], [2, 3]])
    st = M.codebook_stats(codes, 8)
    assert st["usage"] == 0.5
    assert st["code_entropy_bits"] == pytest.approx(2.0)
    assert st["tuple_entropy_bits"] == pytest.approx(1.0)
    assert M.codebook_stats(np.zeros((5, 4), int), 16)["code_entropy_bits"] == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        M.ksg_mi(np.array([[np.nan]] * 10), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="different sample counts"):
        M.linear_probe_nmse(np.zeros((10, 2)), np.random.default_rng(0).standard_normal((9, 2)))


def test_constant_action_dims_are_ignored():
    x, y, truth = correlated_gaussians(800, 1, 0.9)
    y3 = np.concatenate([y, np.zeros((800, 2))], 1)  # e.g. dz, droll never move
    assert abs(M.ksg_mi(x, y3) - truth) < 0.15
    rep = M.linear_probe_nmse(x, y3, pca_dim=None)
    assert len(rep["nmse_per_dim"]) == 1 and rep["nmse"] < 0.3
    assert abs(M.barber_agakov_mi(x, y3, steps=200, hidden=16) - truth) < 0.4
    with pytest.raises(ValueError, match="constant"):
        M.ksg_mi(x, np.zeros((800, 2)))
