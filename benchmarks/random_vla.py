"""Normalisation statistics for the randomly initialised VLAs the benchmarks time (bench_policy.py,
bench_pipeline.py, bench_finetune_step.py): a random policy still needs action (and state) statistics to
turn its outputs into commands, and timing does not depend on their values."""

from __future__ import annotations

import numpy as np


def random_action_normalizer(rng: np.random.Generator, n: int = 500):
    """An ``ActionNormalizer`` fit on ``n`` Bridge-like end-effector deltas (2 cm / 0.02 rad spread) with an
    open/closed gripper."""
    from models.vla import ActionNormalizer

    actions = rng.normal(0, 0.02, (n, 7)).astype(np.float32)
    actions[:, 6] = rng.integers(0, 2, n)
    return ActionNormalizer.fit(actions)


def random_state_normalizer(rng: np.random.Generator, state_dim: int, n: int = 500):
    """A ``StateNormalizer`` fit on ``n`` random robot states (10 cm / 0.1 rad spread)."""
    from models.vla.normalization import StateNormalizer

    return StateNormalizer.fit(rng.normal(0, 0.1, (n, state_dim)).astype(np.float32))
