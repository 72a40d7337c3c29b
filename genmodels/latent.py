"""Latent maths as pure functions.

Every random draw happens on the CPU with a seeded `torch.Generator` and is then moved to the target
device, so the same seed gives the same `z` (and so the same pixels) on CPU, CUDA and MPS.
Image `i` of a batch drawn from `seed` uses seed `seed + i`, as in the StyleGAN tools: asking for
one image with seed 5 gives the sixth image of a batch drawn with seed 0.
"""

from __future__ import annotations

import math

import torch

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed accepts up to a signed 64-bit integer
MAX_TRUNCATION_TRIES = 1000
MAX_NUM = 10_000  # latents per call; enough for a 10k-sample metric, small enough to fit in memory


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"Seed must be an integer, got {seed!r}.")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"Seed {seed} is out of range 0..{MAX_SEED}.")
    return seed


def _check_seeds(seed: int, num: int) -> None:
    """Seeds seed..seed+num-1 must all be valid, and num in 1..MAX_NUM."""
    _check_seed(seed)
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_NUM:
        raise ValueError(f"Number of latents must be an integer in 1..{MAX_NUM}, got {num!r}.")
    _check_seed(seed + num - 1)  # the last image's seed must fit too


def seed_to_z(
    seed: int,
    num: int,
    latent_dim: int,
    *,
    truncation: float | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw `num` standard-normal latents (num, latent_dim), image i from seed `seed + i`.

    With `truncation=t`, any component with |z| > t is redrawn (BigGAN's truncation trick):
    smaller t trades variety for typical, cleaner samples.
    """
    _check_seeds(seed, num)
    if truncation is not None and not (0 < truncation < math.inf):
        raise ValueError(f"Truncation must be a positive finite number, got {truncation}.")
    rows = []
    for i in range(num):
        generator = torch.Generator(device="cpu").manual_seed(seed + i)
        z = torch.randn(latent_dim, generator=generator)
        if truncation is not None:
            z = _resample_outside(z, truncation, generator)
        rows.append(z)
    return torch.stack(rows).to(device)


def seed_to_mixture_z(
    seed: int,
    num: int,
    weights: torch.Tensor,
    means: torch.Tensor,
    scale_trils: torch.Tensor,
    *,
    temperature: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw `num` latents from a Gaussian mixture, image i from seed `seed + i`, (num, d).

    weights (K,), means (K, d), scale_trils (K, d, d) lower-triangular: component k is
    N(means[k], L_k L_k^T). `temperature` scales the draw around its component's mean.
    """
    _check_seeds(seed, num)
    weights, means, scale_trils = weights.cpu().double(), means.cpu().double(), scale_trils.cpu().double()
    rows = []
    for i in range(num):
        generator = torch.Generator(device="cpu").manual_seed(seed + i)
        k = int(torch.multinomial(weights, 1, generator=generator))
        eps = torch.randn(means.shape[1], generator=generator, dtype=torch.float64)
        rows.append(means[k] + temperature * scale_trils[k] @ eps)
    return torch.stack(rows).float().to(device)


def _resample_outside(z: torch.Tensor, threshold: float, generator: torch.Generator) -> torch.Tensor:
    """Redraw components with |z| > threshold from the same generator until all are inside."""
    z = z.clone()
    for _ in range(MAX_TRUNCATION_TRIES):
        outside = z.abs() > threshold
        if not outside.any():
            return z
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
    # Very small thresholds: clamp what is still outside rather than loop for ever.
    return z.clamp(-threshold, threshold)


def truncate(z: torch.Tensor, psi: float, center: torch.Tensor | None = None) -> torch.Tensor:
    """Pull `z` towards `center` (default the prior mean 0) by factor psi (StyleGAN's psi)."""
    if not psi == psi or psi < 0:
        raise ValueError(f"psi must be a non-negative number, got {psi}.")
    center = torch.zeros_like(z) if center is None else center
    return center + psi * (z - center)


def temperature(z: torch.Tensor, t: float) -> torch.Tensor:
    """Scale a prior sample by temperature t: N(0, I) becomes N(0, t^2 I)."""
    if not t == t or t < 0:
        raise ValueError(f"Temperature must be a non-negative number, got {t}.")
    return z * t


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation (1 - t) a + t b; t may be a tensor that broadcasts (e.g. (S, 1))."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dimension (Shoemake 1985).

    Gaussian latents concentrate near a sphere of radius sqrt(d); slerp follows that sphere, while
    lerp's midpoint has a smaller norm and decodes to atypical, washed-out images. Nearly parallel
    vectors fall back to lerp, where the spherical formula divides by sin(omega) ~ 0.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    a_norm = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b_norm = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    cos_omega = (a_norm * b_norm).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos_omega)
    sin_omega = torch.sin(omega)
    parallel = sin_omega.abs() < 1e-4
    safe_sin = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    spherical = (torch.sin((1.0 - t) * omega) * a + torch.sin(t * omega) * b) / safe_sin
    return torch.where(parallel, lerp(a, b, t), spherical)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """`steps` latents from `a` to `b` inclusive, shape (steps, latent_dim)."""
    if steps < 2:
        raise ValueError(f"Interpolation needs at least 2 steps, got {steps}.")
    if method not in ("lerp", "slerp"):
        raise ValueError(f"Unknown interpolation method {method!r}; use 'lerp' or 'slerp'.")
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device).unsqueeze(1)  # (S, 1)
    fn = slerp if method == "slerp" else lerp
    return fn(a.reshape(1, -1), b.reshape(1, -1), t)
