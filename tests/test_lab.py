"""The Lab's actions on tiny random models: validation, shapes, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genmodels.data import to_uint8
from genmodels.editing import EditParams
from genmodels.lab import Lab
from genmodels.latent import seed_to_z
from genmodels.limits import MAX_IMAGES, check_float, check_int
from genmodels.registry import MODELS
from tests.conftest import TINY_CONFIGS


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Tiny random checkpoints of every family (fast, independent of training)."""
    sources = {}
    for name, entry in MODELS.items():
        folder = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        model = entry.model_class(TINY_CONFIGS[name])
        with torch.no_grad():  # flow's last layers start at zero (no velocity at all): give them some
            for parameter in model.parameters():
                if not parameter.any():
                    parameter.normal_(0, 0.05)
        model.save_pretrained(folder)
        sources[name] = folder
    return sources


@pytest.fixture(scope="module")
def lab(sources):
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
    assert result.samples.shape == (8, 28, 28)
    assert result.mu.shape == result.std.shape == (TINY_CONFIGS["vae"].latent_dim,) and (result.std > 0).all()
    # The reconstruction is the posterior mean decoded; the error figures are the picture's, by hand.
    decoded = to_uint8(lab.vae().decode(torch.from_numpy(result.mu)[None]))[0].numpy()
    assert np.array_equal(result.reconstruction, decoded)
    error = (image.astype(float) - result.reconstruction) / 255
    assert np.allclose(result.error, np.abs(error)) and result.mse == pytest.approx(np.mean(error**2), rel=1e-5)
    assert result.psnr == pytest.approx(10 * math.log10(1 / result.mse), abs=0.1), "(before 8-bit rounding)"
    assert np.array_equal(result.samples, lab.roundtrip(image, seed=1).samples)
    assert not np.array_equal(result.samples, lab.roundtrip(image, seed=2).samples), "the seed draws the samples"


def test_interpolate_between_seeds_and_images(lab):
    path = lab.interpolate("dcgan", 0, 1, 5, "slerp")
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], lab.generate("dcgan", 0, 1)[0], atol=1e-5)
    image = np.full((28, 28), 128, np.uint8)
    path = lab.interpolate("vae", 0, 1, 3, "lerp", image_a=image)
    assert np.array_equal(to_uint8(path[:1])[0].numpy(), lab.roundtrip(image).reconstruction), "A: the picture's"
    assert torch.allclose(path[-1], lab.generate("vae", 1, 1)[0], atol=1e-5), "B: seed 1's sample"
    with pytest.raises(ValueError, match="no encoder"):
        lab.interpolate("dcgan", 0, 1, 3, image_a=image)
    with pytest.raises(ValueError):
        lab.interpolate("dcgan", 0, 1, 1)


def test_flow_settings_any_class_and_refusals(lab):
    default = lab.generate("flow", 0, 2, label="Bag")
    assert torch.equal(default, lab.generate("flow", 0, 2, label="Bag", steps=TINY_CONFIGS["flow"].sampling["steps"]))
    assert not torch.equal(default, lab.generate("flow", 0, 2, label="Bag", steps=3))
    assert not torch.equal(default, lab.generate("flow", 0, 2, label="Bag", guidance=3.0))
    # Guidance 0 ignores the class: every class (and none) gives the same images.
    unguided = lab.generate("flow", 0, 2, label="Bag", guidance=0)
    assert torch.equal(unguided, lab.generate("flow", 0, 2, label="Sneaker", guidance=0))
    assert torch.equal(unguided, lab.generate("flow", 0, 2, label=None))
    with pytest.raises(ValueError, match="Steps"):
        lab.generate("flow", 0, 2, steps=2.5)
    with pytest.raises(ValueError, match="Guidance"):
        lab.generate("flow", 0, 2, guidance=math.nan)
    with pytest.raises(ValueError, match="class"):
        lab.generate("cgan", 0, 2, label=None)
    with pytest.raises(ValueError, match="Unknown class 'any class'"):  # the page's words: ui.components.class_of
        lab.generate("flow", 0, 2, label="any class")


def test_flow_inversion_decodes_back_and_feeds_every_tab(lab):
    target = lab.generate("flow", 11, 1, label="Trouser")  # an image the model makes: an exact latent exists
    image = ((target[0, 0].numpy() + 1) * 127.5).round().astype(np.uint8)
    result = lab.invert("flow", image, label="Trouser")
    assert result.psnr > 35, "the ODE run backwards and forwards returns the image"
    assert (result.z - torch.from_numpy(image).flatten() / 127.5 + 1).abs().mean() > 0.1, "the latent is not the image"
    assert torch.allclose(result.image, lab.decode("flow", result.z[None], "Trouser")[0])
    # The same latent as an interpolation endpoint, and through every class (row i = class i).
    path = lab.interpolate("flow", 0, 1, 3, image_a=image, label="Trouser")
    assert torch.allclose(path[0], result.image, atol=1e-5)
    every = lab.every_class("flow", result.z)
    assert every.shape == (10, 1, 28, 28)
    assert torch.allclose(every[1], result.image, atol=1e-5)
    assert torch.allclose(every[7], lab.decode("flow", result.z[None], "Sneaker")[0], atol=1e-5)
    with pytest.raises(ValueError, match="class input"):
        lab.every_class("dcgan", torch.zeros(TINY_CONFIGS["dcgan"].latent_dim))
    with pytest.raises(ValueError, match="mask"):
        lab.invert("flow", image, mask=np.eye(28, dtype=bool))


def test_flow_realize_denoise_inpaint_and_guidance_side_by_side(lab):
    image = np.tile(np.linspace(0, 255, 28).astype(np.uint8), (28, 1))
    assert np.array_equal(lab.realize(image, 0.0), image), "strength 0 leaves the picture as it is"
    realized = lab.realize(image, 0.5, "Bag", seed=3)
    assert np.array_equal(realized, lab.realize(image, 0.5, "Bag", seed=3)) and realized.dtype == np.uint8
    assert not np.array_equal(realized, lab.realize(image, 0.5, "Bag", seed=4)), "the seed picks the noise"
    as_sample = lab.realize(image, 1.0, "Bag", seed=3)
    assert np.array_equal(as_sample, to_uint8(lab.generate("flow", 3, 1, label="Bag"))[0].numpy()), "1 forgets it"
    # Watching: the path starts at the noise (a sample) or the noised picture (a realize) and ends
    # where generate and realize end; one frame per step of the checkpoint's default.
    frames = list(lab.denoise(3, "Bag"))
    assert [round(t, 6) for t, _, _ in frames] == [1.0, 0.5, 0.0] and frames[0][2] is None
    assert np.array_equal(frames[0][1], to_uint8(seed_to_z(3, 1, 784).reshape(1, 1, 28, 28).clamp(-1, 1))[0].numpy())
    assert np.array_equal(frames[-1][1], as_sample)
    frames = list(lab.denoise(3, "Bag", image=image, strength=0.5))
    assert len(frames) == 2 and np.array_equal(frames[-1][1], realized)
    # Guidance 0 is the model without the class, whatever the class asked.
    row, weights = lab.guidance_row(3, "Bag", guidance=2.5)
    assert weights == [0.0, 1.0, 2.5]
    assert torch.equal(row[0:1], lab.generate("flow", 3, 1, label=None))
    assert torch.equal(row[2:3], lab.generate("flow", 3, 1, label="Bag", guidance=2.5))
    with pytest.raises(ValueError, match="Pick a class"):
        lab.guidance_row(3, None)
    regenerate = np.zeros((28, 28), bool)
    regenerate[8:20, 8:20] = True
    blended, generated, result = lab.inpaint("flow", image, regenerate, None, seed=1)
    assert np.array_equal(blended[~regenerate], image[~regenerate]) and not np.array_equal(blended, image)
    assert np.array_equal(blended[regenerate], generated[regenerate]) and result.seconds > 0
    with pytest.raises(ValueError, match="Strength"):
        lab.realize(image, 1.5)


def test_flow_has_directions_and_the_cgan_does_not(lab):
    found = lab.directions("flow")
    assert found.classes.shape == found.centroids.shape == (10, 784) and len(found.principal) > 0
    assert torch.allclose(found.classes.norm(dim=1), torch.ones(10), atol=1e-5)
    z = torch.zeros(1, 784)
    moved = lab.move("flow", z, "Bag", 4.0)[0]
    assert torch.allclose(moved, 28.0 * found.classes[8], atol=1e-5), "amount 4: one typical length, sqrt(784)"
    assert torch.equal(lab.latent("flow", "Bag"), found.centroids[8]), "a class name is its centroid"
    with pytest.raises(ValueError, match="label"):
        lab.directions("cgan")


def test_directions_are_computed_once_per_weights_and_then_read_from_the_cache(sources, tmp_path, monkeypatch):
    monkeypatch.setattr("genmodels.studio.DIRECTIONS_CACHE", tmp_path)
    computed = Lab("cpu", sources).directions("vae")
    assert len(list(tmp_path.glob("vae-*.safetensors"))) == 1
    again = Lab("cpu", sources)
    monkeypatch.setattr(again, "_compute_directions", lambda *args: pytest.fail("recomputed"))
    read = again.directions("vae")
    assert all(torch.equal(getattr(read, key), getattr(computed, key)) for key in vars(computed))
    changed = Lab("cpu", sources)
    with torch.no_grad():
        next(changed.model("vae").parameters())[0] += 0.5
    monkeypatch.setattr(changed, "_compute_directions", lambda *args: computed)
    changed.directions("vae")
    assert len(list(tmp_path.glob("vae-*.safetensors"))) == 2, "other weights: computed and cached apart"


def test_edit_then_project(lab):
    image = np.zeros((28, 28), np.uint8)
    image[2:8, 3:10] = 255
    edited, projected = lab.edit(image, EditParams(flip_h=True))
    assert np.array_equal(edited[2:8, 18:25], image[2:8, 3:10])
    assert np.array_equal(projected, lab.roundtrip(edited).reconstruction), "the edit's VAE reconstruction"
    with pytest.raises(ValueError):
        lab.edit(image, EditParams(scale=float("nan")))


def test_a_broken_checkpoint_leaves_the_others_running(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    lab = Lab("cpu", {"vae": tmp_path})
    assert "vae" in lab.broken and "dcgan" in lab.models
    with pytest.raises(ValueError, match="unavailable"):
        lab.generate("vae", 0, 1)
