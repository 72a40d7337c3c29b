"""Resumable training state in one safetensors file: weights, optimiser moments, RNG and counters.

No pickle anywhere: tensors go in the safetensors body; an optimiser's non-tensor state
(param_groups, hyper-parameters) and the run's counters go in its JSON metadata. The file is written
through a temporary file and a rename, so a run killed at any moment leaves the previous state intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .hub import write_atomic


def save_training_state(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    counters: dict[str, Any],
) -> None:
    """Write modules, optimisers, the CPU RNG state and JSON-able counters to `path` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] = {"counters": json.dumps(counters)}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value.detach().cpu().contiguous()
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for param_id, param_state in state["state"].items():
            for key, value in param_state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{name}/{param_id}/{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(param_id), {})[key] = value
        metadata[f"optim/{name}"] = json.dumps({"param_groups": state["param_groups"], "scalars": scalars})
    tensors["rng/torch"] = torch.get_rng_state()
    write_atomic(path, save(tensors, metadata=metadata))


def load_training_state(
    path: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, Any]:
    """Restore what `save_training_state` wrote into `modules` and `optimizers`; return the counters."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable training state: {exc}") from exc
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, optimizer in optimizers.items():
        saved = json.loads(metadata[f"optim/{name}"])
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim/{name}/"
        for key, value in tensors.items():
            if key.startswith(prefix):
                param_id, field = key[len(prefix) :].split("/", 1)
                state.setdefault(int(param_id), {})[field] = value
        for param_id, fields in saved["scalars"].items():
            state.setdefault(int(param_id), {}).update(fields)
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    torch.set_rng_state(tensors["rng/torch"])
    return json.loads(metadata["counters"])
