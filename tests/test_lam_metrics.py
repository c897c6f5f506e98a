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


def test_effective_codes_see_a_dominant_code_that_usage_misses():
    uniform, dominant = np.full(16, 10), np.array([970] + [2] * 15)
    assert M.effective_code_fraction(uniform) == pytest.approx(1.0)
    assert (dominant > 0).mean() == 1.0  # every code used: "usage" calls this healthy
    assert M.effective_code_fraction(dominant) < 0.1  # about 1.3 equally used codes of 16
    assert M.effective_code_fraction(np.eye(16)[3]) == pytest.approx(1 / 16)
    assert M.entropy_bits(np.zeros(4)) == 0.0


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


# -- issue 11: evaluation that can separate models ------------------------------------------------


def _brute_force_ksg(x, y, k):
    """Reference KSG (algorithm 1) with explicit Chebyshev distance matrices."""
    from scipy.special import digamma

    n = len(x)
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    dy = np.abs(y[:, None, :] - y[None, :, :]).max(-1)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    eps = np.sort(np.maximum(dx, dy), axis=1)[:, k - 1]
    nx, ny = (dx < eps[:, None]).sum(1), (dy < eps[:, None]).sum(1)
    return (digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))) / math.log(2)


def test_ksg_kdtree_equals_brute_force_and_is_fast():
    import time

    x, y, _ = correlated_gaussians(400, 2, 0.7, seed=3)
    # ksg_mi z-scores and jitters its inputs; do the same to the reference
    g = torch.Generator().manual_seed(0)
    xs = M.standardize(M._t(x)) + 1e-8 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    ys = M.standardize(M._t(y)) + 1e-8 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    assert M.ksg_mi(x, y, k=4, seed=0) == pytest.approx(_brute_force_ksg(xs.numpy(), ys.numpy(), 4), abs=1e-9)
    x, y, truth = correlated_gaussians(20000, 3, 0.6, seed=4)
    start = time.perf_counter()
    est = M.ksg_mi(x, y, k=4)
    assert time.perf_counter() - start < 20  # brute force would hold 20000^2 distances; the KD-tree takes ~1-2 s
    assert abs(est - truth) < 0.1, (est, truth)  # -0.5 log2(1 - rho^2) per pair, 3 pairs


def test_episode_splits_never_share_an_episode():
    groups = np.repeat(np.arange(23), 17)
    for seed in range(5):
        parts = M._split(len(groups), seed, groups=groups)
        sets = [set(groups[p.numpy()]) for p in parts]
        assert all(sets) and not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        assert sum(len(p) for p in parts) == len(groups)
        tr, te = M.group_split(groups, 0.3, seed)
        assert not set(groups[tr.numpy()]) & set(groups[te.numpy()])
        assert sorted(np.concatenate([tr.numpy(), te.numpy()])) == list(range(len(groups)))
    with pytest.raises(ValueError, match="at least 3 groups"):
        M._split(10, 0, groups=np.array([0] * 5 + [1] * 5))


def test_probe_split_by_episode_does_not_reward_memorising_episodes():
    # the latent identifies the episode, the target is a per-episode constant: a transition split
    # lets the probe look the episode up, an episode split cannot
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 20)
    z = np.eye(40)[groups] + 0.01 * rng.standard_normal((800, 40))
    a = rng.standard_normal((40, 2))[groups] + 0.05 * rng.standard_normal((800, 2))
    by_transition = M.linear_probe_nmse(z, a, pca_dim=None, seed=0)["nmse"]
    by_episode = M.linear_probe_nmse(z, a, pca_dim=None, seed=0, groups=groups)["nmse"]
    assert by_transition < 0.1 and by_episode > 0.9, (by_transition, by_episode)
    leak = M.view_leakage_probe(z, groups % 2, seed=0, groups=groups)
    assert leak["accuracy"] < 0.8 and abs(leak["shuffled_accuracy"] - 0.5) < 0.2


def test_probe_nmse_is_normalised_by_the_test_split_variance():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(30), 20)
    scale = np.where(groups < 15, 1.0, 5.0)[:, None]  # episodes differ a lot in spread
    z = rng.standard_normal((600, 3))
    a = scale * (z[:, :2] + 0.5 * rng.standard_normal((600, 2)))
    rep = M.linear_probe_nmse(z, a, pca_dim=None, seed=2, groups=groups)
    tr, te = M.group_split(groups, 0.3, 2)
    x = np.hstack([z, np.ones((600, 1))])
    w = np.linalg.lstsq(x[tr], a[tr], rcond=None)[0]
    expected = (((x[te] @ w - a[te]) ** 2).mean(0) / a[te].var(0)).mean()
    assert rep["nmse"] == pytest.approx(expected, rel=1e-6)
    assert rep["shuffled_nmse"] > 0.9 and rep["test"] == len(te)


def test_near_constant_dims_are_found_and_excluded():
    rng = np.random.default_rng(0)
    acts = rng.normal(0, 0.01, (300, 3, 7))
    acts[:, :, 3] = rng.normal(0, 1e-4, (300, 3))  # roll: IK noise
    acts[:, :, 4] = 0.0
    acts[5, 1, 4] = 3e-3  # pitch: one rare spike
    acts[:, :, 6] = rng.integers(0, 2, (300, 3))
    raw = M.raw_net_actions(acts)
    assert M.near_constant_dims(raw) == [3, 4]
    net = M.net_actions(acts, exclude=[3, 4])
    assert net.shape == (300, 5) and np.allclose(net.std(0), 1, atol=1e-3)
    assert M.near_constant_dims(np.column_stack([rng.standard_normal(50), np.full(50, 2.0)])) == [1]


def test_aggregate_mean_sd_and_t_interval():
    agg = M.aggregate([1.0, 2.0, 3.0])
    assert agg["mean"] == 2.0 and agg["sd"] == pytest.approx(1.0) and agg["n"] == 3
    assert agg["ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    one = M.aggregate([0.5])
    assert one["n"] == 1 and one["sd"] == 0.0 and math.isnan(one["ci95"])


def test_latent_dim_constant_in_the_training_episodes_cannot_blow_up_the_variational_bounds():
    """A VQ latent dim that is constant in a split's training episodes and varies in its test episodes
    (found in the study: one Barber-Agakov estimate at -4e9 bits) is dropped for that split, not divided
    by a zero std; the bounds stay finite and near the truth (no information here)."""
    rng = np.random.default_rng(0)
    episodes, per = 12, 20
    groups = np.repeat(np.arange(episodes), per)
    z = rng.integers(0, 2, (episodes * per, 6)).astype(np.float32)  # few distinct values, as VQ codes
    z[:, 5] = 0.0
    z[groups == 11, 5] = 3.0  # one episode alone moves this dim: out of the training part for some splits
    a = rng.normal(size=(episodes * per, 3)).astype(np.float32)
    blown_up_before = 0
    for seed in range(5):
        tr, _, te = M._split(len(z), seed, groups=groups)
        scaled = M.standardize_on_part(torch.as_tensor(z), tr)
        assert torch.isfinite(scaled).all() and scaled.abs().max() < 10
        if 11 not in set(groups[tr.numpy()]):
            blown_up_before += 1
            assert (scaled[:, 5] == 0).all()  # constant in training: dropped in every row
        for estimate in (M.barber_agakov_mi(z, a, steps=60, seed=seed, groups=groups),
                         M.mine_mi(z, a, steps=60, seed=seed, groups=groups)):
            assert np.isfinite(estimate) and abs(estimate) < 3, estimate
    assert blown_up_before > 0  # the case occurred in at least one split
