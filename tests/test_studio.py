"""The latent studio: the maths (inversion, directions, PCA map) and the Lab's studio actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmodels.data import CLASS_NAMES
from genmodels.dcgan import DCGANConfig, Generator
from genmodels.lab import Lab
from genmodels.latent import seed_to_z
from genmodels.preprocess import prepare_upload
from genmodels.studio import (
    INVERT_UPDATES,
    Directions,
    LatentMap,
    fingerprint,
    inversion_steps,
    invert,
    masked_psnr,
    move,
    orthogonalise,
    pca,
)
from tests.conftest import needs_data
from ui.studio import operand, parse_keyframes

# --- maths on known cases -----------------------------------------------------------------------


def test_orthogonalise_removes_the_kept_directions():
    torch.manual_seed(0)
    direction, others = torch.randn(16), torch.randn(3, 16)
    result = orthogonalise(direction, others)
    assert torch.allclose(result.norm(), torch.tensor(1.0))
    assert torch.allclose(others @ result, torch.zeros(3), atol=1e-5)
    with pytest.raises(ValueError, match="span"):
        orthogonalise(others[0], others)


def test_directions_survive_a_file_and_a_bad_file_is_ignored(tmp_path):
    torch.manual_seed(0)
    saved = Directions(torch.randn(10, 6), torch.randn(10, 6), torch.randn(8, 6), torch.rand(8))
    saved.save(tmp_path / "d.safetensors")
    loaded = Directions.load(tmp_path / "d.safetensors", 6)
    assert all(torch.equal(getattr(loaded, key), getattr(saved, key)) for key in vars(saved))
    assert Directions.load(tmp_path / "d.safetensors", 7) is None, "another latent size"
    assert Directions.load(tmp_path / "missing.safetensors", 6) is None
    data = (tmp_path / "d.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert Directions.load(tmp_path / "cut.safetensors", 6) is None, "a truncated file"
    saved.centroids[3, 2] = float("nan")
    saved.save(tmp_path / "nan.safetensors")
    assert Directions.load(tmp_path / "nan.safetensors", 6) is None


def test_fingerprint_changes_with_any_weight_and_the_settings():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    first = fingerprint([net], "a")
    assert fingerprint([net], "a") == first and fingerprint([net], "b") != first
    with torch.no_grad():
        net[0].weight[1, 2] += 1e-6
    assert fingerprint([net], "a") != first
    net[1].num_batches_tracked += 1  # a 0-d buffer counts too
    assert len({first, fingerprint([net], "a")}) == 2


def test_pca_finds_the_axis_of_largest_spread_and_the_map_inverts_it():
    torch.manual_seed(0)
    points = torch.randn(2000, 5) * torch.tensor([5.0, 2.0, 0.1, 0.1, 0.1]) + 3.0
    mean, components, explained = pca(points, 2)
    assert abs(components[0, 0].abs().item() - 1) < 1e-3 and abs(components[1, 1].abs().item() - 1) < 1e-2
    assert explained[0] > 0.8 and explained.sum() > 0.99
    found = LatentMap.fit(points, torch.zeros(2000, dtype=torch.long))
    x, y = found.points[7].tolist()
    back = found.to_latent(x, y)
    assert torch.allclose(back[:2], points[7, :2], atol=0.05), "the two mapped directions come back"
    assert found.nearest(x, y, k=1).tolist() == [7]


def test_move_scales_with_the_amount():
    z, direction = torch.zeros(64), torch.zeros(64)
    direction[3] = 1.0
    # A 64-d standard normal latent is about 8 long; one unit is a quarter of that: amount 2 moves 4.
    assert move(z, [direction], [2.0])[3] == pytest.approx(4.0)
    assert torch.linalg.norm(move(z, [direction], [4.0])) == pytest.approx(8.0), "amount 4: one typical length"
    assert torch.equal(move(z, [direction], [0.0]), z)


def test_masked_psnr_ignores_masked_pixels():
    target = torch.zeros(1, 28, 28)
    prediction = target.clone()
    prediction[:, :14] = 1.0  # wrong top half
    mask = torch.zeros(1, 28, 28)
    mask[:, 14:] = 1  # judge the bottom half only
    assert masked_psnr(prediction, target, mask) == pytest.approx(100.0)
    assert masked_psnr(prediction, target) < 10


def test_gan_inversion_recovers_an_image_the_generator_made():
    torch.manual_seed(0)
    generator = Generator(DCGANConfig(latent_dim=16, gen_width=16)).eval()
    target = generator.sample(1, seed=123)[0]
    result = invert(generator, target, steps=200, restarts=8)
    assert result.psnr > 25, result.psnr
    assert result.image.shape == (1, 28, 28) and result.z.shape == (16,)
    again = invert(generator, target, steps=200, restarts=8)
    assert torch.equal(result.z, again.z), "seeded starts: same image, same latent"


def varied_generator() -> Generator:
    """A small DCGAN whose images change with z (from the DCGAN initialisation's 0.02 they barely do)."""
    torch.manual_seed(0)
    generator = Generator(DCGANConfig(latent_dim=16, gen_width=16)).eval()
    for module in generator.modules():
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(module.weight, 0.0, 0.2)
    return generator


class NearGuess(torch.nn.Module):
    """An 'encoder' whose guess is the true latent plus a fixed offset: where a trained one would be."""

    def __init__(self, z: torch.Tensor, offset: torch.Tensor):
        super().__init__()
        self.guess = torch.nn.Parameter(z + offset, requires_grad=False)

    def forward(self, x, labels=None):
        return self.guess[None].expand(len(x), -1)


def test_encoder_guess_is_refined_to_the_generators_own_latent_and_streamed():
    generator = varied_generator()
    z = seed_to_z(123, 1, 16)[0]
    target = generator.decode(z[None]).detach()[0]
    encoder = NearGuess(z, 0.5 * seed_to_z(7, 1, 16)[0])
    guess_psnr = masked_psnr(generator.decode(encoder.guess[None]).detach()[0], target)

    steps = inversion_steps(generator, target, latent_encoder=encoder)
    results = [next(steps)]
    # Suspended between pictures (a server thread then serves other requests), it leaves no mode behind.
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    results += list(steps)
    assert len(results) == INVERT_UPDATES, "one picture per chunk of the optimisation, the last the result"
    assert [r.fraction for r in results] == sorted(r.fraction for r in results) and results[-1].fraction == 1
    psnrs = [r.psnr for r in results]
    assert all(b >= a - 1e-6 for a, b in zip(psnrs, psnrs[1:])), f"L-BFGS never makes the fit worse: {psnrs}"
    # The image was made by the generator: its own latent reproduces it exactly (an unbounded PSNR).
    assert guess_psnr < 25 and psnrs[-1] > 40, (guess_psnr, psnrs)
    again = invert(generator, target, latent_encoder=encoder)
    assert torch.equal(again.z, results[-1].z), "same image, same latent"


def test_adam_inversion_streams_its_best_start_so_far():
    generator = varied_generator()
    target = generator.sample(1, seed=123)[0]  # not one of the starts (seeds 0-3)
    results = list(inversion_steps(generator, target, steps=50, restarts=4, updates=5))
    assert [r.fraction for r in results] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert results[-1].psnr > results[0].psnr
    assert torch.equal(results[-1].z, invert(generator, target, steps=50, restarts=4).z)


def test_masked_inversion_does_not_look_at_masked_pixels():
    torch.manual_seed(0)
    generator = Generator(DCGANConfig(latent_dim=16, gen_width=16)).eval()
    target = generator.sample(1, seed=5)[0]
    mask = torch.ones(1, 28, 28)
    mask[:, 10:18, 10:18] = 0
    scribbled = target.clone()
    scribbled[:, 10:18, 10:18] = 1.0  # whatever is under the mask must not matter
    a = invert(generator, target, mask=mask, steps=60, restarts=4)
    b = invert(generator, scribbled, mask=mask, steps=60, restarts=4)
    assert torch.equal(a.z, b.z)


# --- the Lab's studio on the bundled models ------------------------------------------------------


@pytest.fixture(scope="module")
def lab():
    return Lab("cpu")


@needs_data
@pytest.mark.parametrize("model", ["dcgan", "vae"])
def test_class_directions_raise_that_class_for_most_seeds(lab, model):
    """For every class c, moving 100 seeds along "more c" raises the classifier's p(c) for >= 80%."""
    classifier = lab.model("classifier", generative=False)
    z = seed_to_z(1000, 100, lab.model(model).latent_dim)
    with torch.inference_mode():
        before = classifier(lab.decode(model, z)).softmax(1)
        for c, name in enumerate(CLASS_NAMES):
            after = classifier(lab.decode(model, lab.move(model, z, name, 2.0))).softmax(1)
            share = (after[:, c] > before[:, c]).double().mean().item()
            assert share >= 0.8, f"{model}: more {name} raised p({name}) for only {share:.0%} of seeds"


@needs_data
def test_keeping_a_class_fixed_changes_the_move(lab):
    z = seed_to_z(0, 1, lab.model("vae").latent_dim)
    free = lab.move("vae", z, "Sneaker", 2.0)
    kept = lab.move("vae", z, "Sneaker", 2.0, keep=["Sandal"])
    direction = lab.directions("vae").classes[CLASS_NAMES.index("Sandal")]
    assert abs(float((kept - z)[0] @ direction)) < 1e-4, "no movement along the kept class"
    assert not torch.allclose(free, kept)


@needs_data
def test_arithmetic_keyframes_and_the_map(lab):
    # Identities that need no formula: A - A + C is C, and A - B + B is A, whatever A, B and C are.
    images = lab.arithmetic("vae", 3, 3, "Sneaker")
    assert images.shape == (4, 1, 28, 28)
    assert torch.allclose(images[3], lab.decode("vae", lab.latent("vae", "Sneaker")[None])[0], atol=1e-5)
    images = lab.arithmetic("dcgan", 1, "Bag", "Bag")
    assert torch.allclose(images[3], lab.generate("dcgan", 1, 1)[0], atol=1e-5), "A - B + B = A, seed 1's image"
    assert torch.allclose(images[0], images[3], atol=1e-5) and not torch.allclose(images[0], images[1])

    frames = lab.keyframes("dcgan", [0, "Bag", 5], steps=6)
    # Two segments of 6 frames share their middle keyframe: 6 + 6 - 1 = 11 frames, from seed 0 to seed 5.
    assert frames.shape == (11, 1, 28, 28)
    assert torch.allclose(frames[0], lab.generate("dcgan", 0, 1)[0], atol=1e-5)
    assert torch.allclose(frames[-1], lab.generate("dcgan", 5, 1)[0], atol=1e-5)
    assert torch.allclose(frames[5], lab.decode("dcgan", lab.latent("dcgan", "Bag")[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="keyframes"):
        lab.keyframes("dcgan", [0])
    for bad in ("Hat", "seed ²", "seed 1.5", -1, 2**63):
        with pytest.raises(ValueError):
            lab.latent("vae", bad)
    decoded, neighbours, labels = lab.map_point(0.0, 0.0)
    assert decoded.shape == (28, 28) and neighbours.shape == (8, 28, 28) and len(labels) == 8
    with pytest.raises(ValueError):
        lab.map_point(float("nan"), 0.0)


def test_keyframe_text_names_seeds_classes_and_uploads_by_number():
    upload = np.zeros((28, 28), np.uint8)
    upload[4:24, 10:18] = 255  # a tall white bar
    first = np.zeros((28, 28), np.uint8)
    first[10:18, 4:24] = 255  # a wide one
    operands = parse_keyframes("seed 0, Sneaker , image 2", [first, upload])
    assert operands[:2] == [0, "Sneaker"]
    assert np.array_equal(operands[2], prepare_upload(upload).image), "image 2 is the second upload, prepared"
    assert not np.array_equal(operands[2], prepare_upload(first).image)
    assert [operand(text) for text in ("seed 3", " 7 ", "class Bag", "Bag", "seed ²")] == [3, 7, "Bag", "Bag", "seed ²"]
    for keys, images, words in [
        ("seed 0, image 1", [], "upload the keyframe images"),
        ("seed 0, image 3", [upload], "image 1 to image 1"),
        ("seed 0, image ²", [upload], "image 1 to image 1"),
        (None, [], "as text"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_keyframes(keys, images)


@needs_data
def test_inverting_test_images(lab):
    from genmodels.data import load_fashion_mnist

    test = load_fashion_mnist("test")
    images, labels = test.images[:3].numpy(), test.labels[:3].tolist()
    # Floors 4 dB under the medians over 100 test images (docs/results.md, bench_inversion: about 22 dB
    # for both GANs, the cGAN under the true class; the VAE's reconstructions 24.1 dB).
    for model, floor in (("vae", 20.0), ("dcgan", 18.0), ("cgan", 18.0)):
        results = [lab.invert(model, image, label=label) for image, label in zip(images, labels)]
        assert all(torch.isfinite(result.z).all() for result in results)
        assert sorted(result.psnr for result in results)[1] > floor, (model, [result.psnr for result in results])
    with pytest.raises(ValueError, match="mask"):
        lab.invert("dcgan", images[0], mask=np.zeros((28, 28), bool))
    with pytest.raises(ValueError, match="class as an input"):
        lab.directions("cgan")
