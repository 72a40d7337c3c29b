"""The flow family's ODE: the solver against an exact case, inversion, guidance, and determinism."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from genmodels.flow import FlowConfig, FlowModel
from tests.conftest import TINY_CONFIGS

# A "data set" where every pixel is N(MEAN, STD^2) and independent: the rectified flow between it and
# N(0, 1) noise has a velocity known in closed form, and its ODE maps noise e to MEAN + STD * e exactly.
MEAN, STD = 0.3, 0.5
TINY = TINY_CONFIGS["flow"]


def tiny(**sampling) -> FlowConfig:
    """The tiny flow config with other sampling settings."""
    return dataclasses.replace(TINY, sampling={**TINY.sampling, **sampling})


class GaussianFlow(FlowModel):
    """A FlowModel whose "network" is the exact velocity of the Gaussian case (labels ignored).

    With x_t = (1 - t) x_0 + t e: Var(x_t) = (1 - t)^2 STD^2 + t^2 = s2, and the velocity is
    E[e - x_0 | x_t = x] = (t - (1 - t) STD^2) / s2 * (x - (1 - t) MEAN) - MEAN.
    """

    def forward(self, x, t, labels):
        t = t[:, None, None, None].double()
        s2 = (1 - t) ** 2 * STD**2 + t**2
        return ((t - (1 - t) * STD**2) / s2 * (x.double() - (1 - t) * MEAN) - MEAN).to(x.dtype)


def gaussian_flow() -> GaussianFlow:
    return GaussianFlow(TINY).eval()


def sample_error(steps: int) -> float:
    noise = torch.randn(4, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = gaussian_flow().double()
    images = model.integrate(noise.reshape(4, 1, 28, 28), model.labels_for(4, None, "cpu"), steps, 1.0)
    return (images.flatten(1) - (MEAN + STD * noise)).abs().max().item()


def test_heun_reaches_the_exact_transport_map_with_second_order_error():
    errors = {steps: sample_error(steps) for steps in (16, 32, 64)}
    assert errors[32] < 5e-3
    # Halving the step divides a second-order method's error by about four (Euler's: by two).
    assert 3.3 < errors[16] / errors[32] < 4.7 and 3.3 < errors[32] / errors[64] < 4.7, errors


@pytest.mark.parametrize("case", ["gaussian", "network"])
def test_the_solver_takes_the_steps_of_diffusers_flow_match_heun_scheduler(case):
    """Our sampler against diffusers' FlowMatchHeunDiscreteScheduler driving the same velocity.

    With num_train_timesteps = steps, its sigmas are 1, (steps - 1) / steps, ..., 1 / steps, 0 (our
    uniform grid) and it too takes the last step into the image with Euler alone. The "network" case
    is a random tiny U-Net with guidance on part of the path (the model's own velocity).
    """
    from diffusers import FlowMatchHeunDiscreteScheduler

    steps = 6
    if case == "gaussian":
        model = gaussian_flow()
        labels, guidance = model.labels_for(3, None, "cpu"), 1.0
    else:
        torch.manual_seed(0)
        model = FlowModel(tiny(guidance_below=0.5)).eval()
        with torch.no_grad():  # its output layer starts at zero, like a fresh diffusion U-Net's
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        labels, guidance = torch.tensor([0, 4, 9]), 3.0
    noise = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))

    scheduler = FlowMatchHeunDiscreteScheduler(num_train_timesteps=steps)
    scheduler.set_timesteps(steps)
    x, evaluations = noise, 0
    with torch.inference_mode():
        for timestep in scheduler.timesteps:
            velocity = model.velocity(x, float(timestep) / steps, labels, guidance)
            x = scheduler.step(velocity, timestep, x).prev_sample
            evaluations += 1
        ours = model.integrate(noise, labels, steps, guidance)
    assert evaluations == 2 * steps - 1, "Heun's two evaluations per step, one for the last"
    assert (ours - x).abs().max() < 1e-5
    assert (ours - noise).abs().max() > 0.1, "the solvers moved the noise"


def test_sampling_never_asks_the_network_about_t_0():
    """The last step into the image is Euler's: a network that knows nothing at t = 0 (here: NaN there,
    as the logit-normal training almost never shows it t near 0) still samples, to the same pixels."""

    class BlindAtZero(GaussianFlow):
        def forward(self, x, t, labels):
            return torch.where((t == 0)[:, None, None, None], torch.nan, super().forward(x, t, labels))

    noise = torch.randn(2, 784, generator=torch.Generator().manual_seed(3))
    blind, exact = BlindAtZero(TINY).eval(), gaussian_flow()
    assert torch.equal(blind.decode(noise, steps=4), exact.decode(noise, steps=4))
    assert torch.isfinite(blind.decode(noise, steps=4)).all()
    images = exact.decode(noise, steps=4)  # and inversion, which starts at t = 0, does not ask either
    assert torch.equal(blind.encode(images, steps=4), exact.encode(images, steps=4))
    error = exact.decode(exact.encode(images, steps=4), steps=4) - images
    assert error[images.abs() < 0.95].abs().max() < 0.02, "four steps there and back (clamped pixels aside)"


def test_inversion_runs_the_ode_backwards():
    model = gaussian_flow()
    images = MEAN + STD * torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    z = model.encode(images, steps=32)
    assert torch.allclose(z.reshape(images.shape), (images - MEAN) / STD, atol=1e-2), "noise = (x - mean) / std"
    # Inversion undoes the sampler's own steps (its last, Euler, one exactly), so the round trip is
    # closer than either direction is to the exact map.
    assert torch.allclose(model.decode(z, steps=32), images.clamp(-1, 1), atol=1e-3)


def test_realize_is_the_identity_at_0_a_sample_at_1_and_the_exact_map_between():
    model = gaussian_flow()
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(3, 1, 28, 28, generator=generator) * 2 - 1
    noise = torch.randn(3, 784, generator=generator)
    assert torch.equal(model.realize(x, 0.0, noise), x)
    assert torch.equal(model.realize(x, 1.0, noise, steps=5), model.decode(noise, steps=5)), "the input forgotten"
    # From x_s = (1 - s) x + s e the exact ODE keeps each pixel's standard score: it ends at
    # MEAN + STD (x_s - (1 - s) MEAN) / sqrt((1 - s)^2 STD^2 + s^2).
    s = 0.6
    x_s = (1 - s) * x + s * noise.reshape(x.shape)
    exact = MEAN + STD * (x_s - (1 - s) * MEAN) / math.sqrt((1 - s) ** 2 * STD**2 + s**2)
    realized = model.realize(x, s, noise, steps=40)  # 24 steps from t = 0.6
    assert torch.allclose(realized, exact.clamp(-1, 1), atol=2e-3)
    assert model.realize_steps(0.5, 6) == 3 and model.realize_steps(0.05, 6) == 1 and model.realize_steps(1.0, 6) == 6
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="Strength"):
            model.realize(x, bad, noise)


def test_inpainting_never_changes_kept_pixels_and_samples_the_rest():
    model = gaussian_flow()
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(64, 1, 28, 28, generator=generator) * 2 - 1
    noise = torch.randn(64, 784, generator=generator)
    keep = torch.zeros(1, 1, 28, 28)
    keep[..., :14] = 1  # keep the left half, redraw the right
    result, full = model.inpaint(x, keep, noise, steps=8, resample=0)
    assert torch.equal(result[..., :14], x[..., :14])
    # Every pixel of the Gaussian case moves on its own, so without resampling the redrawn half is
    # exactly what sampling the same noise draws there.
    assert torch.allclose(result[..., 14:], model.decode(noise, steps=8)[..., 14:], atol=1e-6)
    assert torch.equal(full[..., 14:], result[..., 14:])
    # Resampling noises back with fresh noise: the redrawn pixels keep the data's distribution,
    # N(MEAN, STD^2) clamped to [-1, 1] (moments from a large sample of it).
    result, _ = model.inpaint(x, keep, noise, steps=10, resample=3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(result[..., :14], x[..., :14])
    reference = (MEAN + STD * torch.randn(1_000_000, generator=generator)).clamp(-1, 1)
    redrawn = result[..., 14:].flatten()
    assert abs(redrawn.mean() - reference.mean()) < 0.02 and abs(redrawn.std() - reference.std()) < 0.02
    with pytest.raises(ValueError, match="Resample"):
        model.inpaint(x, keep, noise, resample=-1)


def test_guidance_combines_one_batched_pass_like_two_separate_ones():
    torch.manual_seed(0)
    model = FlowModel(TINY).eval()
    for parameter in model.parameters():  # the zero-initialised output layers would hide the difference
        torch.nn.init.normal_(parameter, 0.0, 0.2)
    x, labels = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
    t = torch.full((2,), 0.4)
    with torch.inference_mode():
        conditional = model(x, t, labels)
        unconditional = model(x, t, torch.full_like(labels, model.null_label))
        assert torch.allclose(
            model.velocity(x, 0.4, labels, 2.5), unconditional + 2.5 * (conditional - unconditional), atol=1e-5
        )
        assert torch.equal(model.velocity(x, 0.4, labels, 1.0), conditional)
        assert torch.equal(model.velocity(x, 0.4, labels, 0.0), unconditional)
        assert not torch.allclose(conditional, unconditional), "the label changes the velocity"


def test_guidance_acts_only_on_its_interval_of_the_path():
    """6 Heun steps from t = 1 evaluate at 1, 5/6, 5/6, 4/6, 4/6, 3/6, 3/6, 2/6, 2/6, 1/6 and (the last,
    Euler step) 1/6 again. With guidance_below 0.4 only the four evaluations at t <= 0.4 (2/6 and 1/6)
    pass conditional and unconditional halves, batch 2B; the other seven pass the condition alone, B.
    Guidance 0 (no class) stays unconditional on the whole path."""
    calls = []

    class Recording(GaussianFlow):
        def forward(self, x, t, labels):
            calls.append((round(t[0].item() * 6), len(x), int((labels == self.null_label).sum())))
            return super().forward(x, t, labels)

    model = Recording(tiny(guidance_below=0.4)).eval()
    model.sample(3, seed=0, label="Shirt", steps=6, guidance=4.0)
    assert calls == [(6, 3, 0), (5, 3, 0), (5, 3, 0), (4, 3, 0), (4, 3, 0), (3, 3, 0), (3, 3, 0)] + [
        (2, 6, 3),
        (2, 6, 3),
        (1, 6, 3),
        (1, 6, 3),
    ]
    calls.clear()
    model.sample(3, seed=0, label="Shirt", steps=6, guidance=0.0)
    assert [(batch, unconditional) for _, batch, unconditional in calls] == [(3, 3)] * 11
    calls.clear()
    model.with_sampling(guidance_below=1.0).sample(3, seed=0, label="Shirt", steps=6, guidance=4.0)  # the whole path
    assert [batch for _, batch, _ in calls] == [6] * 11


def test_autoguidance_moves_away_from_the_guide_only_on_its_interval():
    """The guide here is the exact velocity scaled by 1/2, so the term (w - 1) (v - v_guide) is
    (w - 1) v / 2: at weight 1.5 the velocity is 1.25 v where t <= 0.5, and v itself above. 6 Heun
    steps ask the guide at 3/6, 2/6 and 1/6, twice each, one batch of B (the class alone)."""
    calls = []

    class HalfGuide(GaussianFlow):
        def forward(self, x, t, labels):
            calls.append((round(t[0].item() * 6), len(x)))
            return 0.5 * super().forward(x, t, labels)

    model = gaussian_flow().with_sampling(guidance_below=0.4, autoguidance=1.5, autoguidance_below=0.5)
    x, labels = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
    exact = {t: model(x, torch.full((2,), t), labels) for t in (0.3, 0.6)}
    assert torch.equal(model.velocity(x, 0.3, labels, 1.0), exact[0.3]), "no guide, no term"
    model.guide = HalfGuide(TINY).eval()
    assert torch.allclose(model.velocity(x, 0.3, labels, 1.0), 1.25 * exact[0.3], atol=1e-6)
    assert torch.allclose(model.velocity(x, 0.3, labels, 4.0), 1.25 * exact[0.3], atol=1e-6)  # labels ignored
    assert torch.equal(model.velocity(x, 0.6, labels, 1.0), exact[0.6]), "above the interval"
    alone = model.with_sampling(autoguidance=1.0)
    assert torch.equal(alone.velocity(x, 0.3, labels, 1.0), exact[0.3]), "weight 1 is the model alone"
    calls.clear()
    model.sample(3, seed=0, label="Shirt", steps=6, guidance=4.0)
    assert calls == [(3, 3), (3, 3), (2, 3), (2, 3), (1, 3), (1, 3)]


def test_a_guide_is_saved_and_loaded_inside_its_model(tmp_path):
    guide_config = dataclasses.asdict(dataclasses.replace(TINY, channels=[4, 4, 8], embed_dim=8, attention_heads=0))
    torch.manual_seed(0)
    model = FlowModel(dataclasses.replace(tiny(autoguidance=2.0, autoguidance_below=1.0), guide=guide_config)).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, 0.0, 0.2)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["guide"]["channels"] == [4, 4, 8] and config["sampling"]["autoguidance"] == 2.0
    loaded = FlowModel.from_pretrained(tmp_path)
    assert isinstance(loaded.guide, FlowModel) and loaded.guide.guide is None
    assert torch.equal(loaded.sample(2, seed=1, label=3), model.sample(2, seed=1, label=3))
    model = model.with_sampling(autoguidance=1.0)
    assert not torch.equal(loaded.sample(2, seed=1, label=3), model.sample(2, seed=1, label=3)), "the guide acts"
    alone = loaded.without_guide()
    assert alone.guide is None and loaded.guide is not None, "a copy: the model keeps its guide"
    assert torch.equal(alone.sample(2, seed=1, label=3), model.sample(2, seed=1, label=3))
    nested = dataclasses.replace(TINY, guide={**guide_config, "guide": guide_config})
    with pytest.raises(ValueError, match="guide of its own"):
        FlowModel(nested)
    with pytest.raises(ValueError, match="classes"):
        FlowModel(dataclasses.replace(TINY, guide={**guide_config, "num_classes": 3}))


def test_sampling_is_deterministic_and_checks_its_settings():
    torch.manual_seed(0)
    model = FlowModel(TINY).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, 0.0, 0.2)
    first = model.sample(3, seed=5, label="Bag", steps=3, guidance=2.0)
    assert torch.equal(first, model.sample(3, seed=5, label=8, steps=3, guidance=2.0))
    assert not torch.equal(first, model.sample(3, seed=5, label="Coat", steps=3, guidance=2.0))
    assert torch.allclose(first[1], model.sample(1, seed=6, label="Bag", steps=3, guidance=2.0)[0], atol=1e-5)
    for steps, guidance in ((0, 1.0), (1000, 1.0), (2, math.nan), (2, -1.0), (2.5, 1.0)):
        with pytest.raises(ValueError):
            model.sample(1, steps=steps, guidance=guidance)


def test_the_loss_is_the_rectified_flow_regression():
    """A network that outputs exactly e - x_0 for the batch it is shown has zero loss."""

    class Oracle(FlowModel):
        def forward(self, x, t, labels):
            return self.target

    model = Oracle(FlowConfig(channels=[8, 8, 8], embed_dim=8, groups=4, attention_heads=0))
    x0, noise = torch.rand(2, 1, 28, 28) * 2 - 1, torch.randn(2, 1, 28, 28)
    model.target = noise - x0
    assert model.loss(x0, noise, torch.rand(2), torch.zeros(2, dtype=torch.long)).item() == 0.0
    model.target = torch.zeros_like(x0)
    assert model.loss(x0, noise, torch.rand(2), torch.zeros(2, dtype=torch.long)).item() == pytest.approx(
        ((noise - x0) ** 2).mean().item()
    )


def test_the_sampling_settings_are_the_checkpoints_own_frozen_and_old_configs_still_load(tmp_path):
    """config.json keeps them as "sampling"; the loaded model's are frozen (another setting is another
    model, `with_sampling`, sharing the weights); a config.json from before (the same fields at its top
    level) loads with its own settings, guide included."""
    from genmodels.registry import family_of_config, load_model

    torch.manual_seed(0)
    guide = dataclasses.asdict(dataclasses.replace(tiny(guidance=2.0), channels=[4, 4, 8], attention_heads=0))
    model = FlowModel(dataclasses.replace(tiny(steps=3, guidance=2.5), guide=guide)).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["sampling"]["steps"] == 3 and saved["guide"]["sampling"]["guidance"] == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.sampling.steps = 4
    other = model.with_sampling(steps=5)
    assert (other.sampling.steps, model.sampling.steps) == (5, 3) and other.conv_in.weight is model.conv_in.weight

    old = {key: value for key, value in saved.items() if key != "sampling"}
    old.update(saved["sampling"])  # the layout of checkpoints written before
    old["guide"] = {key: value for key, value in saved["guide"].items() if key != "sampling"}
    old["guide"].update(saved["guide"]["sampling"])
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert family_of_config(old) == "flow"
    loaded = load_model("flow", "cpu", tmp_path)
    assert loaded.sampling.steps == 3 and loaded.sampling.guidance == 2.5 and loaded.guide.sampling.guidance == 2.0
    assert torch.equal(loaded.sample(2, seed=1, label=3), model.sample(2, seed=1, label=3))
