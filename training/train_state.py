"""Resumable training state without pickle: optimizer tensors in safetensors, the
rest (hyper-parameters, step, loss history) in JSON.

Hand-written because ``torch.save`` / Accelerate's ``save_state`` pickle the
optimizer, and the project keeps checkpoints pickle-free.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

OPTIM_TENSORS = "optimizer.safetensors"
OPTIM_META = "optimizer.json"
TRAINER_STATE = "trainer_state.json"


def save_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / OPTIM_TENSORS))
    (directory / OPTIM_META).write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    from safetensors.torch import load_file

    meta = json.loads((directory / OPTIM_META).read_text())
    tensors = load_file(str(directory / OPTIM_TENSORS))
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_trainer_state(directory: Path, state: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TRAINER_STATE).write_text(json.dumps(state, indent=1))


def load_trainer_state(directory: Path) -> dict | None:
    path = directory / TRAINER_STATE
    return json.loads(path.read_text()) if path.exists() else None
