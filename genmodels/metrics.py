"""Image quality numbers. Tensors follow the package convention: (B, 1, H, W) in [-1, 1]."""

from __future__ import annotations

import torch

MAX_PSNR = 100.0  # dB reported for identical images, where the formula is infinite


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, 10 log10(range^2 / MSE), range 2 for [-1, 1]."""
    if prediction.shape != target.shape:
        raise ValueError(f"Shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}.")
    mse = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(4.0 / mse.clamp_min(1e-12))).clamp_max(MAX_PSNR)
