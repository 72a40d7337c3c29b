"""The Lab's actions on tiny random models: validation, shapes, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genmodels.editing import EditParams
from genmodels.lab import MAX_IMAGES, Lab, check_float, check_int
from genmodels.registry import MODELS
from tests.conftest import TINY_CONFIGS


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A Lab over tiny random checkpoints of every family (fast, independent of training)."""
    sources = {}
    for name, entry in MODELS.items():
        folder = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        entry.model_class(TINY_CONFIGS[name]).save_pretrained(folder)
        sources[name] = folder
    return Lab("cpu", sources)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 2.5, None, True, 10**30])
def test_check_int_refuses_nonsense(value):
    with pytest.raises(ValueError):
        check_int("Seed", value, 0, 1000)


def test_check_int_and_float_accept_good_values():
    assert check_int("Steps", 8.0, 2, 32) == 8
    assert check_float("Scale", 1.5, 0, 2) == 1.5
    with pytest.raises(ValueError):
        check_float("Scale", math.nan, 0, 2)


def test_generate_is_deterministic_and_bounded(lab):
    for name in lab.generative():
        a = lab.generate(name, 5, 4)
        assert a.shape == (4, 1, 28, 28)
        assert torch.equal(a, lab.generate(name, 5, 4))
    with pytest.raises(ValueError, match="between 1 and"):
        lab.generate("dcgan", 0, MAX_IMAGES + 1)
    with pytest.raises(ValueError, match="Unknown model"):
        lab.generate("classifier", 0, 1)
    truncated = lab.generate("dcgan", 0, 2, truncation=0.5)
    assert not torch.equal(truncated, lab.generate("dcgan", 0, 2))


def test_roundtrip_reports_error_and_posterior(lab):
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 8:20] = 200
    result = lab.roundtrip(image, seed=1)
    assert result.reconstruction.shape == (28, 28) and result.samples.shape == (8, 28, 28)
    assert result.mu.shape == result.std.shape == (TINY_CONFIGS["vae"].latent_dim,)
    assert (result.std > 0).all() and 0 <= result.mse <= 1 and result.psnr > 0
    assert np.array_equal(result.samples, lab.roundtrip(image, seed=1).samples)


def test_interpolate_between_seeds_and_images(lab):
    path = lab.interpolate("dcgan", 0, 1, 5, "slerp")
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], lab.generate("dcgan", 0, 1)[0], atol=1e-5)
    image = np.full((28, 28), 128, np.uint8)
    assert lab.interpolate("vae", 0, 1, 3, "lerp", image_a=image).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="no encoder"):
        lab.interpolate("dcgan", 0, 1, 3, image_a=image)
    with pytest.raises(ValueError):
        lab.interpolate("dcgan", 0, 1, 1)


def test_edit_then_project(lab):
    image = np.zeros((28, 28), np.uint8)
    image[2:8, 3:10] = 255
    edited, projected = lab.edit(image, EditParams(flip_h=True))
    assert np.array_equal(edited[2:8, 18:25], image[2:8, 3:10])
    assert projected.shape == (28, 28) and projected.dtype == np.uint8
    with pytest.raises(ValueError):
        lab.edit(image, EditParams(scale=float("nan")))


def test_a_broken_checkpoint_leaves_the_others_running(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    lab = Lab("cpu", {"vae": tmp_path})
    assert "vae" in lab.broken and "dcgan" in lab.models
    with pytest.raises(ValueError, match="unavailable"):
        lab.generate("vae", 0, 1)
