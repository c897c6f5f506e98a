"""Train the privileged-state baseline (:mod:`models.state_policy`) on action-labelled sim datasets.

Same labels, action normalisation, chunk targets (masked past the episode end)
and no-op filtering as VLA finetuning; only the observation differs. Reads the
tabular columns only (no video decoding), so it trains in seconds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from lam_ros.action_convention import check_same_convention, dataset_convention
from models.state_policy import StateMLP, StatePolicy, StatePolicyConfig
from models.vla.normalization import ActionNormalizer, StateNormalizer
from training.vla_data import chunk_indices, episode_ends, noop_frames, open_lerobot

log = logging.getLogger(__name__)


def load_tables(roots: list[str | Path]) -> dict:
    """state, environment state, action, episode id and instruction per frame, concatenated."""
    cols: dict[str, list] = {"state": [], "env": [], "action": [], "episode": [], "task": []}
    next_ep = 0
    robots = set()
    for root in roots:
        ds = open_lerobot(root)
        for key in ("observation.state", "observation.environment_state", "action"):
            if key not in ds.meta.features:
                raise ValueError(f"dataset {root} has no {key!r}: record it with `lam-ros record-sim` (privileged state)")
        hf = ds.hf_dataset.with_format("numpy")
        ep = np.asarray(hf["episode_index"]).reshape(-1)
        names = {int(i): n for n, i in zip(ds.meta.tasks.index, ds.meta.tasks["task_index"])}
        cols["state"].append(np.stack(hf["observation.state"]).astype(np.float32))
        cols["env"].append(np.stack(hf["observation.environment_state"]).astype(np.float32))
        cols["action"].append(np.stack(hf["action"]).astype(np.float32))
        _, dense = np.unique(ep, return_inverse=True)
        cols["episode"].append(dense + next_ep)
        next_ep += int(dense.max()) + 1
        cols["task"] += [names[int(i)] for i in np.asarray(hf["task_index"]).reshape(-1)]
        robots.add(ds.meta.robot_type)
    envs = {a.shape[1] for a in cols["env"]}
    if len(envs) != 1:
        raise ValueError(f"datasets {roots} have environment states of different sizes {sorted(envs)}")
    out = {k: (np.concatenate(v) if k != "task" else v) for k, v in cols.items()}
    out["robot"] = robots.pop() if len(robots) == 1 else None
    out["convention"] = check_same_convention({str(r): dataset_convention(r) for r in roots})
    return out


def chunk_targets(actions: np.ndarray, episode: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, chunk, D) targets t..t+chunk-1 clamped to the episode end, and the (N, chunk) mask of real
    steps: the same chunks VLA finetuning trains on (``training.vla_data.chunk_indices``)."""
    idx, mask = chunk_indices(np.arange(len(actions)), episode_ends(episode), chunk)
    return actions[idx], mask.astype(np.float32)


def train_state_policy(datasets: list[str | Path], out_dir: str | Path, *, chunk_size: int = 5, steps: int = 10000,
                       batch_size: int = 256, lr: float = 1e-3, seed: int = 0, action_loss: str = "l1",
                       drop_noops: bool = False, hidden: int = StatePolicyConfig.hidden, layers: int = StatePolicyConfig.layers,
                       gripper_loss_weight: float = 1.0, relative: bool = True) -> dict:
    """Train the privileged-state MLP on recorded episodes (``observation.environment_state``).

    Defaults are the best measured recipe (docs/policy_ladder.md, 25 demos per task, SIMPLER layout):
    object-minus-EE offsets as extra inputs (``relative``; 0 % -> 4 %) and the still frames kept
    (``drop_noops=False``; 4 % -> 17 %): with trimmed demos the only no-ops are the demonstrator
    holding still after the task is done, which is what the policy must do at that point too."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t = load_tables(datasets)
    tasks = sorted(set(t["task"]))
    cfg = StatePolicyConfig(robot=t["robot"] or "widowx", env_state_dim=t["env"].shape[1], action_dim=t["action"].shape[1],
                            chunk_size=chunk_size, hidden=hidden, layers=layers, tasks=tasks, relative=relative,
                            action_convention=t["convention"])
    normalizer = ActionNormalizer.fit(t["action"])
    state_norm = StateNormalizer.fit(t["state"])
    cfg.action_stats, cfg.state_stats = normalizer.to_dict(), state_norm.to_dict()
    model = StateMLP(cfg)
    policy = StatePolicy(cfg, model)
    x = policy.features(t["state"], t["env"], t["task"])
    y, mask = chunk_targets(normalizer.normalize(t["action"]), t["episode"], chunk_size)
    keep = np.flatnonzero(~noop_frames(t["action"], t["episode"])) if drop_noops else np.arange(len(x))
    x, y, mask = (torch.from_numpy(a[keep]) for a in (x, y, mask))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    dim_weight = torch.ones(cfg.action_dim)
    dim_weight[-1] = gripper_loss_weight
    dim_weight = dim_weight / dim_weight.mean()
    model.train()
    history = []
    for _ in range(steps):
        b = torch.from_numpy(rng.integers(0, len(x), size=min(batch_size, len(x))))
        diff = model(x[b]) - y[b]
        err = ((diff.abs() if action_loss == "l1" else diff.square()) * dim_weight).mean(-1)
        loss = (err * mask[b]).sum() / mask[b].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
    model.eval()
    out_dir = Path(out_dir)
    policy.save(out_dir)
    result = {"frames": int(len(x)), "episodes": int(len(np.unique(t["episode"]))), "final_loss": float(np.mean(history[-50:])),
              "tasks": tasks, "out_dir": str(out_dir)}
    (out_dir / "train_summary.json").write_text(json.dumps(result, indent=1))
    return result
