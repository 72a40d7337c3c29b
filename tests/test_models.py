"""Every registered family: shapes, seeded determinism, save -> load round trip, bundled checkpoints."""

from __future__ import annotations

import pytest
import torch

from genmodels.dcgan import Discriminator
from genmodels.registry import MODELS, generative_names, get_entry, load_model
from tests.conftest import TINY_CONFIGS

NAMES = list(MODELS)


def tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[name].model_class(TINY_CONFIGS[name]).eval()


def example_output(name: str, model: torch.nn.Module) -> torch.Tensor:
    """The family's main output on a fixed input: samples for generators, latents for an encoder,
    logits for the classifier."""
    if MODELS[name].generative:
        return model.sample(3, seed=7)
    x = torch.linspace(-1, 1, 3 * 28 * 28).reshape(3, 1, 28, 28)
    with torch.inference_mode():
        return model(x, torch.tensor([0, 4, 9])) if MODELS[name].inverts and MODELS[name].conditional else model(x)


def test_every_family_has_a_tiny_config():
    assert set(TINY_CONFIGS) == set(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_shapes(name):
    model = tiny(name)
    out = example_output(name, model)
    if MODELS[name].generative:
        assert out.shape == (3, 1, 28, 28)
        assert out.min() >= -1 and out.max() <= 1
        z = torch.zeros(2, model.latent_dim)
        assert model.decode(z, 0).shape == (2, 1, 28, 28), "every family: decode(z, label)"
    elif MODELS[name].inverts:
        assert out.shape == (3, TINY_CONFIGS[name].latent_dim), "an encoder guesses a latent per image"
    else:
        assert out.shape == (3, 10)
        assert model.features(torch.zeros(2, 1, 28, 28)).shape == (2, TINY_CONFIGS[name].feature_dim)


@pytest.mark.parametrize("name", generative_names())
def test_same_seed_same_pixels_other_seed_other_pixels(name):
    model = tiny(name)
    assert torch.equal(model.sample(4, seed=3), model.sample(4, seed=3))
    assert not torch.equal(model.sample(4, seed=3), model.sample(4, seed=4))
    # Image i of a batch is the image of seed + i alone.
    assert torch.allclose(model.sample(4, seed=3)[2], model.sample(1, seed=5)[0], atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    model = tiny(name)
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors"}
    loaded = load_model(name, source=tmp_path)
    assert loaded.config == model.config
    assert torch.equal(example_output(name, loaded), example_output(name, model))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_family_checkpoint_is_refused(name, tmp_path):
    other = next(n for n in NAMES if n != name)
    tiny(other).save_pretrained(tmp_path)
    with pytest.raises(ValueError):
        load_model(name, source=tmp_path)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
def test_pickle_weights_are_never_loaded(tmp_path, suffix):
    model = tiny("dcgan")
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / f"pytorch_model{suffix}")
    with pytest.raises(ValueError, match="pickle"):
        load_model("dcgan", source=tmp_path)


def test_corrupt_weights_give_value_error(tmp_path):
    tiny("vae").save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        load_model("vae", source=tmp_path)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="Unknown model"):
        get_entry("stylegan")


def test_discriminator_gives_one_logit_per_image():
    from tests.conftest import TINY_CONFIGS as configs

    d = Discriminator(configs["dcgan"])
    assert d(torch.zeros(5, 1, 28, 28)).shape == (5,)


def test_conditional_generator_follows_the_label():
    model = tiny("cgan")
    sneakers = model.sample(2, seed=0, label="Sneaker")
    assert torch.equal(sneakers, model.sample(2, seed=0, label=7))
    assert not torch.equal(sneakers, model.sample(2, seed=0, label=8))
    with pytest.raises(ValueError):
        model.sample(2, seed=0, label="hat")


def test_vae_mixture_prior_is_saved_and_used(tmp_path):
    from genmodels.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, width=4, hidden_dim=16, prior_components=2)).eval()
    plain = model.sample(3, seed=0)
    model.fit_prior(torch.tensor([1.0, 3.0]), torch.randn(2, 4), torch.eye(4).repeat(2, 1, 1) * 0.2)
    assert not torch.equal(model.sample(3, seed=0), plain)
    model.save_pretrained(tmp_path)
    loaded = load_model("vae", source=tmp_path)
    assert torch.equal(loaded.prior_means, model.prior_means)
    assert torch.equal(loaded.sample(3, seed=0), model.sample(3, seed=0))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_negative_elbo_is_finite_and_trains(likelihood):
    from genmodels.vae import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, width=4, hidden_dim=16, likelihood=likelihood))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        logits, mu, logvar = model(x, generator=torch.Generator().manual_seed(0))
        loss, reconstruction, kl = model.negative_elbo(logits, x, mu, logvar)
        assert torch.isfinite(loss) and kl >= 0
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    if likelihood == "gaussian":
        assert model.log_gamma.item() < 0, "the learned decoder variance shrinks below its start"


def test_vae_encode_shapes_and_reconstruct():
    model = tiny("vae")
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, model.latent_dim)
    assert model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("name", NAMES)
def test_bundled_checkpoint_loads_and_gives_finite_outputs(name):
    entry = MODELS[name]
    assert (entry.checkpoint_path / "model.safetensors").stat().st_size < 10 * 2**20
    assert (entry.checkpoint_path / "README.md").is_file(), "each bundled checkpoint has its model card"
    model = load_model(name)
    out = example_output(name, model)
    assert torch.isfinite(out).all()
    if entry.generative:
        assert out.std() > 0.1, "samples of a trained model are not flat"


def test_an_encoder_of_a_conditional_generator_needs_and_uses_the_class():
    from genmodels.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(latent_dim=8, width=4, hidden=16, num_classes=10)).eval()
    x = torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
    with torch.inference_mode():
        bags, shirts = encoder(x, torch.tensor([8, 8])), encoder(x, torch.tensor([6, 6]))
    assert bags.shape == (2, 8) and not torch.equal(bags, shirts)
    with pytest.raises(ValueError, match="classes"):
        encoder(x)


def test_point_to_map_is_the_transposed_convolution_it_replaces():
    from genmodels.dcgan import PointToMap

    torch.manual_seed(0)
    fast, reference = PointToMap(6, 5, 7, bias=True), torch.nn.ConvTranspose2d(6, 5, 7, 1, 0, bias=True)
    reference.load_state_dict(fast.state_dict())  # the same parameters under the same names
    x = torch.randn(3, 6, 1, 1)
    assert torch.allclose(fast(x), reference(x), atol=1e-6) and fast(x).shape == (3, 5, 7, 7)
    wide = torch.randn(2, 6, 2, 3)  # not a point: the general path
    assert torch.equal(fast(wide), reference(wide))
