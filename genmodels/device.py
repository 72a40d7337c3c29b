"""Where tensors live: the one place that turns a user's device choice into a `torch.device`."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Return the device for `name`: "auto" picks CUDA, then MPS, then CPU."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if name == "auto":
        if torch.cuda.is_available():
            return resolve_device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("Device 'cuda' was asked for, but PyTorch sees no CUDA GPU on this machine.")
    if name == "cuda":
        # Full float32 matmuls and convolutions (no TF32), so a seed decodes to the same pixels as on
        # the CPU up to float rounding.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("Device 'mps' was asked for, but PyTorch sees no Apple MPS device here.")
    return torch.device(name)
