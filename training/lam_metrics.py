"""Action-centricity metrics for latent actions (FACTS section 7).

All estimators take plain arrays (N, dz) latents and (N, da) actions and return bits.
KSG's neighbour search uses SciPy's ``cKDTree`` with the Chebyshev norm (O(N log N));
PCA and the probes are written on torch (``torch.linalg.svd`` / ``lstsq``).
Every estimator that splits its samples (BA / MINE train-val-test, the linear probe,
the view probe) accepts ``groups`` (e.g. the episode of each transition) and then
splits by group, never putting transitions of one episode on both sides.
Every MI estimator has a ``shuffled`` sanity value: the same estimator on a randomly
permuted pairing, which must be about 0 bits. :func:`aggregate` turns the values of
several evaluation seeds into mean, standard deviation and a 95 % confidence interval.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN2 = math.log(2.0)


def _t(x, dtype=torch.float64) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(dtype)
    if t.ndim == 1:
        t = t[:, None]
    if not torch.isfinite(t).all():
        raise ValueError("metric input contains NaN or infinite values")
    return t


def drop_constant(a: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    """Remove target dims that never vary (e.g. dz of a planar task): they carry no information and
    their zero variance would turn NMSE / Gaussian entropies into 0/0."""
    keep = a.std(0) > tol
    if not keep.any():
        raise ValueError("every target dimension is constant: nothing to measure")
    return a[:, keep]


def _check_pair(z: torch.Tensor, a: torch.Tensor, min_n: int = 8) -> None:
    if z.shape[0] != a.shape[0]:
        raise ValueError(f"latents ({z.shape[0]}) and actions ({a.shape[0]}) have different sample counts")
    if z.shape[0] < min_n:
        raise ValueError(f"need at least {min_n} samples, got {z.shape[0]}")


def standardize(x: torch.Tensor, ref: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    ref = x if ref is None else ref
    return (x - ref.mean(0)) / (ref.std(0) + eps)


def _split(n: int, seed: int, fracs=(0.6, 0.2, 0.2), groups=None) -> list[torch.Tensor]:
    """Random index sets with the given fractions; with ``groups`` (one id per sample) whole groups
    are assigned (by group count), so no group has samples in two parts."""
    gen = torch.Generator().manual_seed(seed)
    if groups is None:
        perm = torch.randperm(n, generator=gen)
        cuts = np.cumsum([int(round(f * n)) for f in fracs[:-1]])
        return list(torch.tensor_split(perm, cuts.tolist()))
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} samples")
    unique = np.unique(groups)
    if len(unique) < len(fracs):
        raise ValueError(f"need at least {len(fracs)} groups (episodes) to split by group, got {len(unique)}")
    order = unique[torch.randperm(len(unique), generator=gen).numpy()]
    counts = [max(1, int(round(f * len(unique)))) for f in fracs[:-1]]
    while sum(counts) > len(unique) - 1:  # every part keeps at least one group
        counts[int(np.argmax(counts))] -= 1
    cuts = np.cumsum(counts)
    parts = np.split(order, cuts)
    return [torch.as_tensor(np.flatnonzero(np.isin(groups, part))) for part in parts]


def group_split(groups, test_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) sample indices with whole groups (episodes) on one side only."""
    tr, te = _split(len(groups), seed, (1.0 - test_frac, test_frac), groups)
    return tr, te


def _shuffled(a: torch.Tensor, seed: int) -> torch.Tensor:
    return a[torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(seed + 7919))]


# -- KSG ---------------------------------------------------------------------------------
def ksg_mi(x, y, k: int = 4, jitter: float = 1e-8, seed: int = 0) -> float:
    """Kraskov-Stoegbauer-Grassberger estimator (algorithm 1, Chebyshev norm) in bits.

    Inputs are z-scored and given a tiny jitter so that exactly repeated points
    (quantised latents) do not produce zero-distance ties. eps_i is the distance to the
    k-th neighbour in the joint space; n_x(i), n_y(i) count the points strictly closer than
    eps_i in each marginal (KD-trees, O(N log N)).
    """
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    x, y = _t(x), drop_constant(_t(y))
    _check_pair(x, y, min_n=k + 2)
    g = torch.Generator().manual_seed(seed)
    x = (standardize(x) + jitter * torch.randn(x.shape, generator=g, dtype=x.dtype)).numpy()
    y = (standardize(y) + jitter * torch.randn(y.shape, generator=g, dtype=y.dtype)).numpy()
    n = x.shape[0]
    dist, _ = cKDTree(np.hstack([x, y])).query(np.hstack([x, y]), k=k + 1, p=np.inf)
    radius = np.nextafter(dist[:, -1], 0)  # strictly closer than eps
    nx = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True) - 1
    ny = cKDTree(y).query_ball_point(y, radius, p=np.inf, return_length=True) - 1
    mi = digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))
    return float(mi) / LN2


def random_projection(z, dim: int, seed: int = 0) -> torch.Tensor:
    """Gaussian random projection of z-scored latents to ``dim`` dims (identity if already small)."""
    z = standardize(_t(z))
    if z.shape[1] <= dim:
        return z
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(z.shape[1], dim, generator=g, dtype=z.dtype) / math.sqrt(dim)
    return z @ proj


def ksg_report(z, a, k: int = 4, proj_dim: int = 8, seed: int = 0) -> dict[str, float]:
    zp = random_projection(z, proj_dim, seed)
    a = _t(a)
    return {"mi_bits": ksg_mi(zp, a, k, seed=seed), "shuffled_bits": ksg_mi(zp, _shuffled(a, seed), k, seed=seed),
            "k": k, "proj_dim": int(zp.shape[1])}


# -- variational estimators --------------------------------------------------------------
def _mlp(d_in: int, d_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, d_out))


def _fit(loss_fn, params, steps: int, lr: float, val_fn, eval_every: int = 25):
    """Adam on a loss; keep the parameters with the best validation score (early stopping)."""
    opt = torch.optim.Adam(params, lr=lr)
    best, best_state = -float("inf"), [p.detach().clone() for p in params]
    for step in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % eval_every == 0 or step == steps - 1:
            with torch.no_grad():
                score = float(val_fn())
            if score > best:
                best, best_state = score, [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, s in zip(params, best_state):
            p.copy_(s)


def standardize_on_part(x: torch.Tensor, part: torch.Tensor, rel_tol: float = 1e-3) -> torch.Tensor:
    """z-score ``x`` with the statistics of the rows ``part``; dims that (almost) do not vary within ``part``
    (std below ``rel_tol`` x their std over all rows) are set to 0 in every row.

    A VQ latent takes few distinct values (16 in a 300-step LAM of the study), so a dim can be constant in
    the training episodes of a split and vary in its test episodes: divided by a zero std its test values
    reached 6e6 and one Barber-Agakov estimate -4e9 bits. Such a dim carries nothing an estimator could
    have learned from the training part, so it is dropped for that split."""
    out = standardize(x, x[part])
    out[:, x[part].std(0) <= rel_tol * x.std(0)] = 0.0
    return out


def _prepare_pair(z, a, seed: int, groups=None):
    """Seeded float32 tensors, train/val/test split (by group if given), both sides z-scored on the training part
    (:func:`standardize_on_part`)."""
    torch.manual_seed(seed)
    z, a = _t(z, torch.float32), drop_constant(_t(a, torch.float32))
    _check_pair(z, a)
    tr, va, te = _split(len(z), seed, groups=groups)
    return standardize_on_part(z, tr), standardize_on_part(a, tr), (tr, va, te)


def barber_agakov_mi(z, a, hidden: int = 128, depth: int = 2, steps: int = 500, lr: float = 3e-3,
                     seed: int = 0, groups=None) -> float:
    """I(Z;A) >= H(A) - E[-log q(a|z)], q = N(mlp(z), sigma^2 I) with one learned sigma; bits.

    H(A) is the test cross-entropy of a diagonal Gaussian fitted to the training actions,
    so an uninformative z gives about 0 (not a spurious positive value).
    """
    z, a, (tr, va, te) = _prepare_pair(z, a, seed, groups)
    mean_net = _mlp(z.shape[1], a.shape[1], hidden, depth)
    log_sigma = nn.Parameter(torch.zeros(()))
    params = list(mean_net.parameters()) + [log_sigma]

    def nll(idx):
        mu = mean_net(z[idx])
        return (0.5 * ((a[idx] - mu) / log_sigma.exp()).pow(2) + log_sigma + 0.5 * math.log(2 * math.pi)).sum(1).mean()

    def marginal_ce(idx):
        var = a[tr].var(0) + 1e-8
        mu = a[tr].mean(0)
        return (0.5 * (a[idx] - mu).pow(2) / var + 0.5 * torch.log(2 * math.pi * var)).sum(1).mean()

    _fit(lambda: nll(tr), params, steps, lr, lambda: -nll(va))
    with torch.no_grad():
        return float(marginal_ce(te) - nll(te)) / LN2


def mine_mi(z, a, hidden: int = 128, depth: int = 2, steps: int = 500, lr: float = 3e-3, seed: int = 0,
            n_shuffles: int = 8, groups=None) -> float:
    """MINE: Donsker-Varadhan bound E_p[T] - log E_{p(z)p(a)}[e^T], marginals by shuffling; bits."""
    z, a, (tr, va, te) = _prepare_pair(z, a, seed, groups)
    critic = _mlp(z.shape[1] + a.shape[1], 1, hidden, depth)
    params = list(critic.parameters())

    def dv(idx, shuffles: int = 1):
        zi, ai = z[idx], a[idx]
        joint = critic(torch.cat([zi, ai], 1)).mean()
        marg = torch.cat([critic(torch.cat([zi, ai[torch.randperm(len(idx))]], 1)) for _ in range(shuffles)])
        return joint - (torch.logsumexp(marg.squeeze(1), 0) - math.log(marg.shape[0]))

    _fit(lambda: -dv(tr), params, steps, lr, lambda: dv(va, n_shuffles))
    with torch.no_grad():
        return float(dv(te, n_shuffles)) / LN2


def variational_report(z, a, seed: int = 0, steps: int = 500, groups=None) -> dict[str, dict[str, float]]:
    a_shuf = _shuffled(_t(a), seed)
    kw = dict(steps=steps, seed=seed, groups=groups)
    return {
        "barber_agakov": {"mi_bits": barber_agakov_mi(z, a, **kw), "shuffled_bits": barber_agakov_mi(z, a_shuf, **kw)},
        "mine": {"mi_bits": mine_mi(z, a, **kw), "shuffled_bits": mine_mi(z, a_shuf, **kw)},
    }


# -- linear probe ------------------------------------------------------------------------
def pca_fit(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and the top ``dim`` principal directions (dim, D) of x (SVD)."""
    mean = x.mean(0)
    _, sv, vh = torch.linalg.svd(x - mean, full_matrices=False)
    rank = int((sv > sv.max().clamp_min(1e-30) * 1e-6).sum()) if sv.numel() else 0
    return mean, vh[: max(1, min(dim, rank))]  # numerically null directions would give huge probe weights


def linear_probe_nmse(z, a, pca_dim: int | None = 16, test_frac: float = 0.3, seed: int = 0, groups=None) -> dict:
    """NMSE of a linear map (PCA-reduced z -> a) on held-out samples: MSE / Var(test targets), per dim then mean.

    With ``groups`` (the episode of each sample) whole episodes go to the train or the test side
    (never transitions of one episode on both). The variance is the test split's own, so a
    probe that predicts the test mean scores 1 and the ratio is the fraction of the test
    variance left unexplained. Constant target dims are dropped (near-constant ones should be
    removed before, see :func:`near_constant_dims`). The linear layer is fitted by least
    squares (the exact optimum a gradient-trained probe approaches): no optimiser noise.
    ``shuffled_nmse`` is the same probe on a shuffled pairing (about 1 or above).
    """
    z, a = _t(z), drop_constant(_t(a))
    _check_pair(z, a)
    if groups is None:
        perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))
        n_te = max(2, int(round(test_frac * len(z))))
        te, tr = perm[:n_te], perm[n_te:]
    else:
        tr, te = group_split(groups, test_frac, seed)

    def fit_eval(targets: torch.Tensor) -> torch.Tensor:
        mean, comps = pca_fit(z[tr], pca_dim if pca_dim is not None else z.shape[1])
        feats = (z - mean) @ comps.t()
        x = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype)], 1)
        w = torch.linalg.lstsq(x[tr], targets[tr]).solution
        err = (x[te] @ w - targets[te]).pow(2).mean(0)
        return err / targets[te].var(0, unbiased=False).clamp_min(1e-12)

    per_dim = fit_eval(a)
    shuffled = fit_eval(_shuffled(a, seed))
    return {"nmse": float(per_dim.mean()), "nmse_per_dim": [float(x) for x in per_dim],
            "shuffled_nmse": float(shuffled.mean()), "pca_dim": pca_dim, "train": int(len(tr)), "test": int(len(te))}


# Net-action std below which a Bridge dim counts as near-constant: 0.5 mm, 0.11 deg, gripper 1e-3.
BRIDGE_DIMS = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
NEAR_CONSTANT_STD = (5e-4, 5e-4, 5e-4, 2e-3, 2e-3, 2e-3, 1e-3)


def raw_net_actions(actions) -> np.ndarray:
    """(N, H, dim) per-step actions over the frame gap -> (N, dim): sum of the delta dims, last gripper."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] < 2:
        raise ValueError(f"actions must be (N, H, dim>=2), got shape {a.shape}")
    return np.concatenate([a[:, :, :-1].sum(1), a[:, -1, -1:]], axis=1)


def near_constant_dims(net, tol=None) -> list[int]:
    """Indices of net-action dims whose std (in their own units) is below ``tol`` (default:
    :data:`NEAR_CONSTANT_STD` for 7-D Bridge actions, 1e-6 otherwise).

    The scripted expert's roll and pitch deltas are IK noise (std about 1e-4 rad with rare
    spikes): z-scoring would blow them up to unit variance and every probe would be scored on noise.
    """
    net = np.asarray(net, dtype=np.float64)
    if tol is None:
        tol = NEAR_CONSTANT_STD if net.shape[1] == len(NEAR_CONSTANT_STD) else 1e-6
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), (net.shape[1],))
    return [int(i) for i in np.flatnonzero(net.std(0) < tol)]


def net_actions(actions, eps: float = 1e-6, exclude=()) -> np.ndarray:
    """(N, H, 7) per-step actions over the frame gap -> (N, 7 - len(exclude)) net actions, z-scored.

    Sum of the first 6 (delta pose) dims over the horizon, the last step's gripper value,
    minus the ``exclude``d dims, then re-normalised with the net actions' own statistics
    (MVP-LAM appendix B).
    """
    net = raw_net_actions(actions)
    keep = [i for i in range(net.shape[1]) if i not in set(exclude)]
    net = net[:, keep]
    return (net - net.mean(0)) / (net.std(0) + eps)


# -- AC structure, leakage, codebook ----------------------------------------------------
def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x**2).sum() * (y**2).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def ac_structure(z_ij, z_jk, z_ik, z_ii=None, z_ji=None, state_delta=None) -> dict[str, float]:
    """AC-LAM structure metrics on flattened latents (N, D).

    additivity: E||z_ik - z_ij - z_jk||^2 / E||z_ij||^2; identity: E||z_ii|| / E||z_ij||;
    inverse: E||z_ij + z_ji|| / E||z_ij||; norm_state_r: Pearson r(||z_ij||, ||delta state_ij||).
    """
    f = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)  # noqa: E731
    z_ij, z_jk, z_ik = f(z_ij), f(z_jk), f(z_ik)
    norm_ij = np.linalg.norm(z_ij, axis=1)
    out = {"additivity_residual": float(((z_ik - z_ij - z_jk) ** 2).sum(1).mean() / ((z_ij**2).sum(1).mean() + 1e-12))}
    if z_ii is not None:
        out["identity"] = float(np.linalg.norm(f(z_ii), axis=1).mean() / (norm_ij.mean() + 1e-12))
    if z_ji is not None:
        out["inverse"] = float(np.linalg.norm(z_ij + f(z_ji), axis=1).mean() / (norm_ij.mean() + 1e-12))
    if state_delta is not None:
        out["norm_state_r"] = pearson(norm_ij, np.linalg.norm(f(state_delta), axis=1))
    return out


def view_leakage_probe(z, labels, test_frac: float = 0.3, steps: int = 300, seed: int = 0, groups=None) -> dict[str, float]:
    """Held-out accuracy of a logistic-regression probe predicting the camera from the latent.

    ``chance`` is the majority-class rate of the test split; a view-invariant latent scores about chance.
    ``groups`` (the episode of each sample) splits by episode. ``shuffled_accuracy`` is the same
    probe trained on shuffled labels (the control: about chance).
    """
    torch.manual_seed(seed)
    z = standardize(_t(z, torch.float32))
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    _check_pair(z, y[:, None])
    n_cls = int(y.max()) + 1
    if groups is None:
        perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))
        n_te = max(2, int(round(test_frac * len(z))))
        te, tr = perm[:n_te], perm[n_te:]
    else:
        tr, te = group_split(groups, test_frac, seed)

    def fit(targets: torch.Tensor) -> float:
        probe = nn.Linear(z.shape[1], n_cls)
        opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-4)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(probe(z[tr]), targets[tr]).backward()
            opt.step()
        with torch.no_grad():
            return float((probe(z[te]).argmax(1) == targets[te]).float().mean())

    acc = fit(y)
    shuffled = fit(y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 7919))])
    chance = float(torch.bincount(y[te], minlength=n_cls).max()) / len(te)
    return {"accuracy": acc, "shuffled_accuracy": shuffled, "chance": chance, "num_views": n_cls}


def aggregate(values) -> dict:
    """Mean, sample sd, 95 % confidence half-width of the mean (Student t), n and the values."""
    from scipy import stats

    v = np.asarray([float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return {"mean": float("nan"), "sd": float("nan"), "ci95": float("nan"), "n": 0, "values": []}
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(v.mean()), "sd": sd, "ci95": half, "n": n, "values": v.tolist()}


def entropy_bits(counts) -> float:
    """Entropy (bits) of the distribution that ``counts`` (occurrences per outcome) sample; 0 for no counts."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def effective_code_fraction(counts) -> float:
    """Perplexity (2 ** entropy, the number of equally used codes with the same entropy) over the codebook size.
    Unlike "usage" (codes used at least once), it falls to about 1 / num_codes when one code takes nearly every
    transition and the others appear only now and then."""
    counts = np.asarray(counts)
    return float(2.0 ** entropy_bits(counts) / len(counts)) if len(counts) else 0.0


def codebook_stats(codes, num_codes: int) -> dict[str, float]:
    """Usage (fraction of codes ever used), entropy of single codes and of whole code tuples, perplexity."""
    c = np.asarray(codes).reshape(len(codes), -1)
    counts = np.bincount(c.ravel(), minlength=num_codes)
    _, tuple_counts = np.unique(c, axis=0, return_counts=True)
    h = entropy_bits(counts)
    return {
        "usage": float((counts > 0).mean()),
        "code_entropy_bits": h,
        "code_entropy_max_bits": math.log2(num_codes),
        "perplexity": 2.0**h,
        "tuple_entropy_bits": entropy_bits(tuple_counts),
        "unique_tuples": int(len(tuple_counts)),
    }
