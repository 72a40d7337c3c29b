"""Latent maths: seeded draws, truncation, lerp and slerp properties."""

from __future__ import annotations

import math

import pytest
import torch

from genmodels.latent import (
    MAX_SEED,
    interpolate,
    lerp,
    seed_to_mixture_z,
    seed_to_z,
    slerp,
    temperature,
    truncate,
)


def test_seed_to_z_is_deterministic_and_per_image():
    a = seed_to_z(10, 3, 16)
    assert a.shape == (3, 16)
    assert torch.equal(a, seed_to_z(10, 3, 16))
    assert torch.equal(a[1], seed_to_z(11, 1, 16)[0])
    assert not torch.equal(a[0], a[1])


def test_seed_to_z_is_standard_normal():
    z = seed_to_z(0, 2000, 32)
    assert abs(z.mean().item()) < 0.02
    assert abs(z.std().item() - 1) < 0.02


@pytest.mark.parametrize("bad", [-1, MAX_SEED + 1, 1.5, "3", True])
def test_bad_seeds_are_rejected(bad):
    with pytest.raises(ValueError):
        seed_to_z(bad, 1, 4)


@pytest.mark.parametrize("num", [0, -3, 10_001])
def test_bad_counts_are_rejected(num):
    with pytest.raises(ValueError):
        seed_to_z(0, num, 4)


def test_last_seed_must_fit():
    with pytest.raises(ValueError):
        seed_to_z(MAX_SEED, 2, 4)
    assert seed_to_z(MAX_SEED, 1, 4).shape == (1, 4)


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
def test_truncation_bounds_every_component(threshold):
    z = seed_to_z(0, 50, 64, truncation=threshold)
    assert z.abs().max() <= threshold
    assert torch.equal(z, seed_to_z(0, 50, 64, truncation=threshold))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_truncation_is_rejected(bad):
    with pytest.raises(ValueError):
        seed_to_z(0, 1, 4, truncation=bad)


def test_truncate_and_temperature_scale_towards_the_mean():
    z = seed_to_z(1, 4, 8)
    assert torch.allclose(truncate(z, 0.5), 0.5 * z)
    assert torch.allclose(truncate(z, 0.0, center=torch.ones(8)), torch.ones(4, 8))
    assert torch.allclose(temperature(z, 0.7), 0.7 * z)
    with pytest.raises(ValueError):
        temperature(z, float("nan"))


def test_lerp_endpoints_and_midpoint():
    a, b = seed_to_z(0, 1, 8)[0], seed_to_z(1, 1, 8)[0]
    assert torch.equal(lerp(a, b, 0.0), a)
    assert torch.allclose(lerp(a, b, 1.0), b)
    assert torch.allclose(lerp(a, b, 0.5), (a + b) / 2)


def test_slerp_endpoints_and_norm():
    a, b = seed_to_z(0, 1, 128)[0], seed_to_z(1, 1, 128)[0]
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    # Between two vectors of equal norm, slerp keeps the norm; lerp shrinks it.
    b = b * a.norm() / b.norm()
    mid = slerp(a, b, 0.5)
    assert math.isclose(mid.norm().item(), a.norm().item(), rel_tol=1e-4)
    assert lerp(a, b, 0.5).norm() < 0.9 * a.norm()


def test_slerp_of_unit_vectors_follows_the_arc():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]), atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 1.0 + 1e-9, 3.0])
def test_slerp_of_nearly_parallel_vectors_is_finite(scale):
    a = seed_to_z(2, 1, 64)[0]
    out = slerp(a, a * scale, torch.linspace(0, 1, 5).unsqueeze(1))
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0], a, atol=1e-5)
    assert torch.allclose(out[-1], a * scale, atol=1e-4)


def test_interpolate_shapes_and_endpoints():
    a, b = seed_to_z(0, 2, 16)
    for method in ("lerp", "slerp"):
        path = interpolate(a, b, 7, method)
        assert path.shape == (7, 16)
        assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    with pytest.raises(ValueError):
        interpolate(a, b, 1)
    with pytest.raises(ValueError):
        interpolate(a, b, 4, "cubic")


def test_mixture_draws_are_seeded_and_follow_the_components():
    weights = torch.tensor([0.25, 0.75])
    means = torch.tensor([[-10.0, 0.0], [10.0, 0.0]])
    trils = torch.eye(2).repeat(2, 1, 1) * 0.1
    z = seed_to_mixture_z(0, 2000, weights, means, trils)
    assert torch.equal(z, seed_to_mixture_z(0, 2000, weights, means, trils))
    assert torch.equal(z[5], seed_to_mixture_z(5, 1, weights, means, trils)[0])
    assert abs((z[:, 0] > 0).float().mean().item() - 0.75) < 0.03
    assert (z[:, 0].abs() - 10).abs().max() < 1.0
    cold = seed_to_mixture_z(0, 50, weights, means, trils, temperature=0.0)
    assert set(cold[:, 0].tolist()) <= {-10.0, 10.0}
