"""Property-based tests (hypothesis): any number a user can send to the edit and latent code either
gives a valid, finite, reproducible result or a ValueError, never another exception or NaN pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genmodels.editing import EditParams, apply_edits
from genmodels.lab import Lab
from genmodels.latent import MAX_SEED, interpolate, seed_to_z, slerp
from genmodels.limits import MAX_IMAGES

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Anything a form field or an API call can carry: ordinary values, edges, huge, negative, NaN, inf.
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-400, max_value=400),
    st.integers(min_value=-(2**70), max_value=2**70),
)
seeds = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True))

LAB = None


def lab() -> Lab:
    global LAB
    if LAB is None:
        LAB = Lab("cpu")
    return LAB


IMAGE = np.zeros((28, 28), dtype=np.uint8)
IMAGE[6:22, 9:19] = 200  # a bright rectangle, so every edit changes something


@SETTINGS
@given(
    crop=numbers,
    angle=numbers,
    flip_h=st.booleans(),
    flip_v=st.booleans(),
    scale=numbers,
    tx=numbers,
    ty=numbers,
    shx=numbers,
    shy=numbers,
)
def test_edits_give_an_image_or_a_value_error(crop, angle, flip_h, flip_v, scale, tx, ty, shx, shy):
    params = EditParams(crop, angle, flip_h, flip_v, scale, tx, ty, shx, shy)
    try:
        out = apply_edits(torch.from_numpy(IMAGE)[None], params)
    except ValueError:
        return
    assert out.shape == (1, 28, 28) and out.dtype == torch.uint8
    again = apply_edits(torch.from_numpy(IMAGE)[None], params)
    assert torch.equal(out, again), "same edit, same pixels"


@SETTINGS
@given(model=st.sampled_from(["dcgan", "vae", "cgan"]), seed=seeds, num=seeds, knob=numbers)
def test_generate_gives_finite_reproducible_images_or_a_value_error(model, seed, num, knob):
    try:
        images = lab().generate(model, seed, num, truncation=knob, temperature=knob, label=3)
    except ValueError:
        return
    count = int(num)
    assert 1 <= count <= MAX_IMAGES and 0 <= int(seed) < MAX_SEED
    assert images.shape == (count, 1, 28, 28)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, lab().generate(model, seed, num, truncation=knob, temperature=knob, label=3))


@SETTINGS
@given(model=st.sampled_from(["dcgan", "vae", "cgan"]), a=seeds, b=seeds, steps=seeds, method=st.text(max_size=6))
def test_interpolate_gives_a_path_or_a_value_error(model, a, b, steps, method):
    method = method if method.strip() else "slerp"
    try:
        path = lab().interpolate(model, a, b, steps, method)
    except ValueError:
        return
    assert method in ("slerp", "lerp")
    assert path.shape == (int(steps), 1, 28, 28) and torch.isfinite(path).all()


@SETTINGS
@given(
    seed=st.integers(min_value=0, max_value=MAX_SEED - 64),
    num=st.integers(min_value=1, max_value=64),
    truncation=st.one_of(st.none(), st.floats(min_value=0.05, max_value=4)),
)
def test_each_image_has_its_own_seed(seed, num, truncation):
    batch = seed_to_z(seed, num, 16, truncation=truncation)
    assert batch.shape == (num, 16) and torch.isfinite(batch).all()
    last = seed_to_z(seed + num - 1, 1, 16, truncation=truncation)[0]
    assert torch.equal(batch[-1], last), "image i uses seed + i whatever the batch"
    if truncation is not None:
        assert batch.abs().max() <= truncation


@SETTINGS
@given(
    seed=st.integers(min_value=0, max_value=2**62),
    steps=st.integers(min_value=2, max_value=32),
    method=st.sampled_from(["lerp", "slerp"]),
)
def test_interpolation_paths_start_and_end_at_their_endpoints(seed, steps, method):
    a, b = seed_to_z(seed, 2, 32)
    path = interpolate(a, b, steps, method)
    assert path.shape == (steps, 32)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)


@SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**62), t=st.floats(min_value=0, max_value=1))
def test_slerp_between_equal_norms_keeps_the_norm(seed, t):
    a, b = seed_to_z(seed, 2, 64)
    b = b * a.norm() / b.norm()
    middle = slerp(a, b, t)
    assert math.isclose(middle.norm().item(), a.norm().item(), rel_tol=1e-4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0.0])
def test_seed_to_z_refuses_bad_truncation(bad):
    with pytest.raises(ValueError):
        seed_to_z(0, 4, 8, truncation=bad)
