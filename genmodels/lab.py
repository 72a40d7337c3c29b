"""The lab: every model loaded once on one device, and each action the app offers as a method.

Methods take plain values (names, seeds, counts, uint8 images) and return tensors or uint8 arrays;
they validate their arguments with a `ValueError` that names the bad value, and run under
`torch.inference_mode()`. The app only turns these results into components.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import CLASS_NAMES, class_index, load_fashion_mnist, to_tensor, to_uint8
from .device import resolve_device
from .editing import EditParams, apply_edits
from .flow import INPAINT_RESAMPLE, INPAINT_STEPS, MAX_GUIDANCE, MAX_SAMPLING_STEPS, REALIZE_STRENGTH
from .hub import HubRepo, card_metrics, download_checkpoint
from .images import scatter
from .latent import MAX_SEED, interpolate, lerp, seed_to_z, slerp
from .metrics import psnr
from .preprocess import prepare_upload
from .registry import MODELS, family_of, latent_encoder_name, load_model, parse_model_repos, refine_iterations
from .studio import (
    DIRECTION_SAMPLES,
    DIRECTIONS_CACHE,
    PCA_SAMPLES,
    PRINCIPAL_COMPONENTS,
    Directions,
    Inversion,
    LatentMap,
    class_directions,
    fingerprint,
    gan_principal_directions,
    generated_latents,
    inversion_steps,
    invert_ode,
    last_result,
    masked_psnr,
    move,
    ode_latents,
    orthogonalise,
    pca,
    posterior_means,
)

logger = logging.getLogger(__name__)

MAX_IMAGES = 64  # images per request in the app
MAX_APP_SEED = MAX_SEED - MAX_IMAGES  # the largest seed a request may start from: all its images' seeds fit
MAX_STEPS = 32  # interpolation steps
MAX_TRUNCATION = 4.0
MAX_TEMPERATURE = 3.0
ANY_CLASS = "any class"  # the label that asks a family that can sample without a class (flow) for none
ROUNDTRIP_SAMPLES = 8  # posterior samples shown next to a reconstruction
MAX_MOVE = 10.0  # amount along a direction, in quarters of a typical latent's length
MAX_MAP = 1e3  # map coordinates
MAX_KEYFRAMES = 8
DIRECTION_IMAGES = 20_000  # training images behind the VAE's class and principal directions
# ...and the flow's, each inverted by its ODE in a few steps: 600 images at 3 steps take ~11 s on 2 CPU
# cores and move samples into a class as well as 2,000 at 6 steps (classifier's share of the class
# after +4 towards Trouser, Bag, Dress: 1.00, 0.99, 0.91 against 1.00, 1.00, 0.91; from 0.10, 0.05, 0.10).
ODE_DIRECTION_IMAGES = 600
ODE_DIRECTION_STEPS = 3
# An absolute path: a "/" that starts a word (not one inside a URL or an OWNER/NAME repo id).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"()]+")


@dataclass
class RoundTrip:
    """A VAE round trip of one 28x28 image (uint8 images, float statistics)."""

    input: np.ndarray  # (28, 28)
    reconstruction: np.ndarray  # (28, 28), decoded from the posterior mean
    error: np.ndarray  # (28, 28) float in [0, 1]: |input - reconstruction| / 255
    mse: float  # mean squared error on [0, 1] pixels
    psnr: float  # dB
    mu: np.ndarray  # (latent_dim,) posterior mean
    std: np.ndarray  # (latent_dim,) posterior standard deviation
    samples: np.ndarray  # (ROUNDTRIP_SAMPLES, 28, 28) decoded from z ~ q(z|x)


def check_int(name: str, value: float, low: int, high: int) -> int:
    """`value` as an int in [low, high], or a ValueError naming `name` (NaN, inf, fractions refused)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a whole number between {low} and {high}.")
    if isinstance(value, (int, np.integer)):
        number = int(value)  # exact: large seeds do not pass through a float
    else:
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value}.")
        number = int(number)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}.")
    return number


def check_float(name: str, value: float, low: float, high: float) -> float:
    """`value` as a float in [low, high], or a ValueError naming `name`."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number between {low} and {high}.")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a number between {low} and {high}, got {value}.")
    return number


def without_server_paths(message: str) -> str:
    """`message` with every absolute path cut to its last part, for what the page shows a visitor."""

    def last_part(match: re.Match) -> str:
        path = match.group(0)
        core = path.rstrip("/.,;:")
        return (core.rsplit("/", 1)[-1] or "/") + path[len(core) :].lstrip("/")

    return ABSOLUTE_PATH.sub(last_part, message)


class Lab:
    """Loaded models plus the operations of each app tab."""

    @classmethod
    def from_specs(cls, device: str | torch.device = "auto", specs: str | list[str] = "") -> Lab:
        """The lab with the Hub checkpoints `specs` (MODEL=OWNER/NAME[@REVISION], as --hub-repo takes them).

        Specs that do not parse are named in `notices` and skipped: the lab always starts.
        """
        try:
            sources, problem = parse_model_repos(specs), None
        except ValueError as exc:
            logger.warning("Hub repos ignored: %s", exc)
            sources, problem = {}, f"Hub repos ignored: {exc}"
        lab = cls(device, sources)
        if problem:
            lab.notices.insert(0, problem)
        return lab

    def __init__(self, device: str | torch.device = "auto", sources: dict[str, str | Path | HubRepo] | None = None):
        """Load every registry model on `device`: from `sources` (a folder or a Hub repo) or its bundled checkpoint.

        A Hub repo that cannot be fetched or is not a valid checkpoint falls back to the bundled one,
        with a line in `notices`; a model whose checkpoint does not load at all is left out and
        named in `broken`. Either way the lab starts with what it has.
        """
        self.device = resolve_device(device)
        self.models: dict[str, torch.nn.Module] = {}
        self.broken: dict[str, str] = {}  # name -> why it did not load
        self.notices: list[str] = []  # where models came from when it was not the bundled checkpoint
        self.metrics: dict[str, dict[str, float]] = {}  # name -> evaluation results from its model card
        self.yours: dict[str, torch.nn.Module] = {}  # "yours-<family>-<id>" -> a model a user trained or brought
        self._studio_lock = threading.Lock()  # directions and the map are computed once, on first use
        self._directions: dict[str, Directions] = {}
        self._map: LatentMap | None = None
        self._map_images: torch.Tensor | None = None
        self._map_picture: tuple[np.ndarray, tuple[float, float, float, float]] | None = None
        sources = sources or {}
        for name, entry in MODELS.items():
            source = sources.get(name, entry.checkpoint_path)
            if isinstance(source, HubRepo):
                try:
                    folder = download_checkpoint(source)
                    self.models[name] = load_model(name, self.device, folder)
                except (ValueError, OSError) as exc:
                    problem = without_server_paths(str(exc))
                    self.notices.append(f"{name}: could not load {source} ({problem}); using the bundled checkpoint.")
                    logger.warning(self.notices[-1])
                    source = entry.checkpoint_path
                else:
                    self.notices.append(f"{name}: loaded from the Hub repo {source}.")
                    logger.info(self.notices[-1])
                    self.metrics[name] = card_metrics(folder)
                    continue
            try:
                self.models[name] = load_model(name, self.device, source)
            except (ValueError, OSError) as exc:
                self.broken[name] = without_server_paths(str(exc))
                logger.warning("Model %s did not load and is left out: %s", name, exc)
                continue
            self.metrics[name] = card_metrics(source)

    # --- what is available -------------------------------------------------------------------

    def generative(self) -> list[str]:
        """Names of the loaded generative models, in registry order."""
        return [name for name in self.models if MODELS[name].generative]

    def best_generative(self) -> str | None:
        """The loaded generative model with the lowest FIDc in its model card (else the first one)."""
        scored = [
            (self.metrics[name]["FIDc"], name) for name in self.generative() if "FIDc" in self.metrics.get(name, {})
        ]
        return min(scored)[1] if scored else next(iter(self.generative()), None)

    def add_yours(self, name: str, folder: str | Path) -> torch.nn.Module:
        """Load a user's checkpoint folder as model `name` ("yours-<family>-<id>"), kept until `drop_yours`.

        The page offers it to that user's session alone; the name's random id keeps it out of reach of others."""
        model = load_model(family_of(name), self.device, folder)
        self.yours[name] = model
        self.metrics[name] = card_metrics(folder)
        return model

    def drop_yours(self, name: str) -> None:
        """Forget a user's model (its session ended)."""
        self.yours.pop(name, None)
        self.metrics.pop(name, None)

    def model(self, name: str, generative: bool = True) -> torch.nn.Module:
        """The loaded model `name`, or a ValueError saying why it is not available."""
        if name in self.yours:
            return self.yours[name]
        if name in self.broken:
            raise ValueError(f"Model {name!r} is unavailable: its checkpoint did not load.")
        if name not in self.models or (generative and not MODELS[name].generative):
            choices = self.generative() if generative else list(self.models)
            raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(choices)}.")
        return self.models[name]

    def vae(self):
        """The VAE, which the round-trip, edit and image-endpoint features need."""
        return self.model("vae")

    def label(self, model: str, label: int | str | None) -> int | None:
        """The class index `model` is given: a conditional family's class (None or ANY_CLASS: none, where
        the family samples without one; the cGAN refuses it), and None for a family without classes."""
        if not MODELS[family_of(model)].conditional or label is None:
            return None
        if isinstance(label, str) and label.strip().lower() == ANY_CLASS:
            return None
        return class_index(label)

    # --- generate ----------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        model: str,
        seed: int,
        num: int,
        truncation: float = 0.0,
        temperature: float = 1.0,
        label: int | str | None = 0,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """`num` images (num, 1, 28, 28) from seeds seed..seed+num-1; truncation 0 means off.

        `label` (class index or name) is used by conditional models and ignored by the others; each
        family uses its own knobs: truncation (GANs), temperature (VAE), or the ODE's steps and
        guidance (flow; None takes the checkpoint's defaults).
        """
        net = self.model(model)
        seed = check_int("Seed", seed, 0, MAX_APP_SEED)
        num = check_int("Number of images", num, 1, MAX_IMAGES)
        knob = MODELS[family_of(model)].sample_knob
        if knob == "truncation":
            knobs = {"truncation": check_float("Truncation", truncation, 0.0, MAX_TRUNCATION) or None}
        elif knob == "temperature":
            knobs = {"temperature": check_float("Temperature", temperature, 0.0, MAX_TEMPERATURE)}
        else:
            knobs = {
                "steps": None if steps is None else check_int("Steps", steps, 1, MAX_SAMPLING_STEPS),
                "guidance": None if guidance is None else check_float("Guidance", guidance, 0.0, MAX_GUIDANCE),
            }
        return net.sample(num, seed=seed, label=self.label(model, label), **knobs)

    # --- VAE round trip ----------------------------------------------------------------------

    @torch.inference_mode()
    def roundtrip(self, image: np.ndarray, seed: int = 0) -> RoundTrip:
        """Encode a prepared 28x28 uint8 image, decode the posterior mean, and draw posterior samples."""
        vae = self.vae()
        x = to_tensor(image).to(self.device)  # (1, 1, 28, 28)
        mu, logvar = vae.encode(x)
        std = torch.exp(0.5 * logvar)
        reconstruction = vae.decode(mu)
        eps = seed_to_z(check_int("Seed", seed, 0, MAX_SEED - ROUNDTRIP_SAMPLES), ROUNDTRIP_SAMPLES, vae.latent_dim)
        samples = vae.decode(mu + std * eps.to(self.device))  # (S, 1, 28, 28)
        recon_uint8 = to_uint8(reconstruction)[0].numpy()
        error = np.abs(image.astype(np.float32) - recon_uint8.astype(np.float32)) / 255.0
        return RoundTrip(
            input=image,
            reconstruction=recon_uint8,
            error=error,
            mse=float(np.mean(error**2)),
            psnr=float(psnr(reconstruction.cpu(), x.cpu())[0]),
            mu=mu[0].cpu().numpy(),
            std=std[0].cpu().numpy(),
            samples=to_uint8(samples).numpy(),
        )

    # --- interpolation -----------------------------------------------------------------------

    @torch.inference_mode()
    def endpoint(
        self, model: str, seed: int, image: np.ndarray | None = None, label: int | str | None = 0
    ) -> torch.Tensor:
        """A latent (latent_dim,): seed's z, or for `image` the VAE's posterior mean or the flow's inverted
        noise (under class `label`)."""
        net = self.model(model)
        if image is not None:
            if MODELS[family_of(model)].ode:
                return invert_ode(net, to_tensor(image)[0], self.label(model, label)).z
            if not MODELS[family_of(model)].encoder:
                raise ValueError(
                    f"Model {model!r} has no encoder; use a seed for its endpoints, or pick the VAE or flow."
                )
            mu, _ = net.encode(to_tensor(image).to(self.device))
            return mu[0]
        return seed_to_z(check_int("Seed", seed, 0, MAX_SEED), 1, net.latent_dim, device=self.device)[0]

    @torch.inference_mode()
    def interpolate(
        self,
        model: str,
        seed_a: int,
        seed_b: int,
        steps: int,
        method: str = "slerp",
        image_a: np.ndarray | None = None,
        image_b: np.ndarray | None = None,
        label: int | str = 0,
    ) -> torch.Tensor:
        """Images (steps, 1, 28, 28) along the path between two endpoints (of class `label` if conditional)."""
        steps = check_int("Steps", steps, 2, MAX_STEPS)
        a = self.endpoint(model, seed_a, image_a, label)
        b = self.endpoint(model, seed_b, image_b, label)
        return self.decode(model, interpolate(a, b, steps, method), label)

    @torch.inference_mode()
    def interpolate_at(
        self,
        model: str,
        seed_a: int,
        seed_b: int,
        position: float,
        method: str = "slerp",
        image_a: np.ndarray | None = None,
        image_b: np.ndarray | None = None,
        label: int | str = 0,
    ) -> torch.Tensor:
        """The image (1, 1, 28, 28) at `position` in [0, 1] along the path of `interpolate` (0 = A, 1 = B)."""
        position = check_float("Position", position, 0.0, 1.0)
        if method not in ("lerp", "slerp"):
            raise ValueError(f"Unknown interpolation method {method!r}; use 'lerp' or 'slerp'.")
        a = self.endpoint(model, seed_a, image_a, label)[None]
        b = self.endpoint(model, seed_b, image_b, label)[None]
        z = slerp(a, b, position) if method == "slerp" else lerp(a, b, position)
        return self.decode(model, z, label)

    # --- classic edits and projection --------------------------------------------------------

    @torch.inference_mode()
    def edit(self, image: np.ndarray, params: EditParams) -> tuple[np.ndarray, np.ndarray]:
        """Apply classic edits to a prepared 28x28 image, then project it onto the VAE's manifold."""
        edited = apply_edits(torch.from_numpy(image)[None], params)[0].numpy()  # (28, 28) uint8
        projected = self.vae().reconstruct(to_tensor(edited).to(self.device))
        return edited, to_uint8(projected)[0].numpy()

    # --- latent studio -----------------------------------------------------------------------

    @torch.inference_mode()
    def guess_class(self, image: np.ndarray) -> str:
        """The bundled classifier's class for a prepared 28x28 uint8 image, by name."""
        probabilities = self.model("classifier", generative=False).predict(to_tensor(image).to(self.device))
        return CLASS_NAMES[int(probabilities.argmax())]

    def invert(
        self, model: str, image: np.ndarray, mask: np.ndarray | None = None, label: int | str = 0, progress=None
    ) -> Inversion:
        """Bring a prepared 28x28 uint8 image into `model`'s latent space (see genmodels.studio.invert).

        `mask` (28, 28), true where the pixels are to be matched, for masked regeneration.
        """
        return last_result(self.inversion_steps(model, image, mask, label), progress)

    def inversion_steps(
        self, model: str, image: np.ndarray, mask: np.ndarray | None = None, label: int | str = 0
    ) -> Iterator[Inversion]:
        """`invert`, yielding the best result so far while it optimises (a GAN's inversion, or the VAE's
        under a mask) and the final one last (fraction 1): what the page streams.

        A GAN with a trained encoder (the registry's `inverts`) starts from its guess and refines it by
        L-BFGS; without one, Adam from 16 seeded starts (see genmodels.studio.inversion_steps).
        """
        net = self.model(model)
        weights = None if mask is None else mask_weights(mask)
        if MODELS[family_of(model)].ode:
            if mask is not None:
                raise ValueError(f"{model} does not invert under a mask; regenerate with `inpaint`.")
            yield invert_ode(net, to_tensor(image)[0], self.label(model, label))
            return
        has_encoder, label = MODELS[family_of(model)].encoder, self.label(model, label)
        encoder_name = latent_encoder_name(model)
        latent_encoder = self.models.get(encoder_name) if encoder_name else None
        yield from inversion_steps(
            net,
            to_tensor(image)[0],
            has_encoder=has_encoder,
            latent_encoder=latent_encoder,
            label=label,
            mask=weights,
            refine_iterations=refine_iterations(model),
        )

    def inpaint(
        self,
        model: str,
        image: np.ndarray,
        regenerate: np.ndarray,
        label: int | str = 0,
        progress=None,
        seed: int = 0,
        steps: int = INPAINT_STEPS,
        resample: int = INPAINT_RESAMPLE,
    ) -> tuple[np.ndarray, np.ndarray, Inversion]:
        """Redraw the `regenerate` pixels (28, 28) bool of a prepared image, consistently with the rest:
        a GAN or the VAE inverts matching only the other pixels; the flow samples from seed `seed`'s
        noise with the other pixels held on their path (RePaint). Returns (blended image, the model's
        full image, the result with its PSNR on the kept pixels)."""
        if MODELS[family_of(model)].ode:  # the flow samples the region around the kept pixels (RePaint)
            result = self._inpaint_ode(model, image, mask_weights(~regenerate), label, seed, steps, resample)
        else:
            result = self.invert(model, image, mask=~regenerate, label=label, progress=progress)
        generated = to_uint8(result.image[None])[0].numpy()
        return np.where(regenerate, generated, image).astype(np.uint8), generated, result

    @torch.inference_mode()
    def _inpaint_ode(
        self, model: str, image: np.ndarray, keep: torch.Tensor, label: int | str, seed: int, steps: int, resample: int
    ) -> Inversion:
        started = time.perf_counter()
        net = self.model(model)
        seed = check_int("Seed", seed, 0, MAX_SEED)
        target = to_tensor(image).to(self.device)  # (1, 1, 28, 28)
        noise = seed_to_z(seed, 1, net.latent_dim)
        generator = torch.Generator().manual_seed(seed)
        label = self.label(model, label)
        _, full = net.inpaint(target, keep[None], noise, label, steps, resample=resample, generator=generator)
        return Inversion(
            z=noise[0].to(self.device),
            image=full[0],
            psnr=masked_psnr(full[0].cpu(), target[0].cpu(), keep),
            seconds=time.perf_counter() - started,
        )

    # --- the flow model: realize, watch it denoise, guidance side by side ---------------------

    def ode_model(self, model: str | None = None) -> tuple[str, torch.nn.Module]:
        """The model `model` if it samples by an ODE (a user's flow), else the bundled one, with its name,
        or a ValueError."""
        if model is not None and model != "flow":
            if not MODELS[family_of(model)].ode:
                raise ValueError(f"{model} does not sample by an ODE: pick a flow model.")
            return model, self.model(model)
        for name in self.models:
            if MODELS[name].ode:
                return name, self.models[name]
        broken = [name for name in self.broken if MODELS[name].ode]
        raise ValueError(f"The {broken[0] if broken else 'flow'} model is not loaded, so this needs it.")

    @torch.inference_mode()
    def realize(
        self, image: np.ndarray, strength: float = REALIZE_STRENGTH, label: int | str | None = None, seed: int = 0
    ) -> np.ndarray:
        """A rough prepared 28x28 uint8 image made realistic by the flow (SDEdit, `FlowModel.realize`):
        noised to t = strength with seed `seed`'s noise, then denoised, as class `label` (None: any)."""
        name, flow = self.ode_model()
        strength = check_float("Strength", strength, 0.0, 1.0)
        noise = seed_to_z(check_int("Seed", seed, 0, MAX_SEED), 1, flow.latent_dim, device=self.device)
        realized = flow.realize(to_tensor(image).to(self.device), strength, noise, self.label(name, label))
        return to_uint8(realized)[0].numpy()

    def denoise(
        self,
        seed: int = 0,
        label: int | str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        image: np.ndarray | None = None,
        strength: float = REALIZE_STRENGTH,
        model: str | None = None,
    ) -> Iterator[tuple[float, np.ndarray, np.ndarray | None]]:
        """The flow's path, one step at a time: (t, x_t, the clean image predicted at the step) as uint8
        (28, 28), starting with (start, the noisy start, None). From seed `seed`'s noise at t = 1 (a
        sample), or with `image` from that image noised to t = strength (a realize). The same pixels as
        `generate` and `realize` at the end. `model`: a flow model by name (default: the bundled one)."""
        name, flow = self.ode_model(model)
        seed = check_int("Seed", seed, 0, MAX_APP_SEED)
        steps = flow.sampling.steps if steps is None else check_int("Steps", steps, 1, MAX_SAMPLING_STEPS)
        guidance = flow.sampling.guidance if guidance is None else check_float("Guidance", guidance, 0.0, MAX_GUIDANCE)
        noise = seed_to_z(seed, 1, flow.latent_dim, device=self.device)
        labels = flow.labels_for(1, self.label(name, label), self.device)
        if image is None:
            x, start = noise.reshape(1, 1, 28, 28), 1.0
        else:
            strength = check_float("Strength", strength, 0.0, 1.0)
            x, start = flow.noised(to_tensor(image).to(self.device), strength, noise), strength
            steps = flow.realize_steps(strength, steps) if strength > 0 else 0
        yield start, to_uint8(x.clamp(-1, 1))[0].numpy(), None
        for t, x, predicted in flow.path(x, labels, steps, guidance, start=start):
            yield t, to_uint8(x.clamp(-1, 1))[0].numpy(), to_uint8(predicted.clamp(-1, 1))[0].numpy()

    @torch.inference_mode()
    def guidance_row(
        self,
        seed: int = 0,
        label: int | str = 0,
        steps: int | None = None,
        guidance: float | None = None,
        model: str | None = None,
    ) -> tuple[torch.Tensor, list[float]]:
        """Seed `seed` of class `label` at guidance 0 (unconditional), 1 (conditional) and `guidance`
        (default: the checkpoint's): images (3, 1, 28, 28) and the three weights (flow model `model`)."""
        name, flow = self.ode_model(model)
        if self.label(name, label) is None:
            raise ValueError("Pick a class: guidance weighs the class against no class.")
        high = flow.sampling.guidance if guidance is None else check_float("Guidance", guidance, 0.0, MAX_GUIDANCE)
        weights = [0.0, 1.0, high]
        images = [self.generate(name, seed, 1, label=label, steps=steps, guidance=w) for w in weights]
        return torch.cat(images), weights

    def directions(self, model: str) -> Directions:
        """Class and principal directions of a model that can work without a class, computed once and kept."""
        net = self.model(model)
        if not movable(model):
            raise ValueError(f"{model} takes the class as an input: pick it with the label, not a direction.")
        with self._studio_lock:
            if model not in self._directions:
                self._directions[model] = self._cached_directions(model, net)
            return self._directions[model]

    def _cached_directions(self, model: str, net: torch.nn.Module) -> Directions:
        """The directions cached for these weights and settings, or computed now and cached."""
        entry = MODELS[family_of(model)]
        sources = [net] if entry.encoder or entry.ode else [net, self.model("classifier", False)]
        settings = (
            f"{model} {self.device.type} images {DIRECTION_IMAGES} "
            f"ode {ODE_DIRECTION_IMAGES} x{ODE_DIRECTION_STEPS} alone "
            f"samples {DIRECTION_SAMPLES} pca {PCA_SAMPLES} components {PRINCIPAL_COMPONENTS}"
        )
        path = DIRECTIONS_CACHE / f"{model}-{fingerprint(sources, settings)[:32]}.safetensors"
        found = Directions.load(path, net.latent_dim)
        if found is not None:
            return found
        started = time.perf_counter()
        computed = self._compute_directions(model, net)
        logger.info("Studio directions for %s computed in %.1f s", model, time.perf_counter() - started)
        try:
            computed.save(path)
        except OSError as exc:
            logger.warning("Studio directions for %s not cached (%s)", model, without_server_paths(str(exc)))
        return computed

    @torch.inference_mode()
    def _compute_directions(self, model: str, net: torch.nn.Module) -> Directions:
        entry = MODELS[family_of(model)]
        if entry.encoder or entry.ode:  # labelled training images, encoded or inverted
            train = load_fashion_mnist("train")
            if entry.ode:
                latents = ode_latents(net, train.images[:ODE_DIRECTION_IMAGES], ODE_DIRECTION_STEPS)
            else:
                latents = posterior_means(net, train.images[:DIRECTION_IMAGES])
            classes, centroids = class_directions(latents, train.labels[: len(latents)])
            _, principal, explained = pca(latents, PRINCIPAL_COMPONENTS)
        else:  # a GAN: generated samples labelled by the classifier; GANSpace for the principal ones
            latents, labels = generated_latents(net, self.model("classifier", generative=False))
            classes, centroids = class_directions(latents, labels)
            principal, explained = gan_principal_directions(net, latents[:PCA_SAMPLES])
        return Directions(classes=classes, centroids=centroids, principal=principal, explained=explained)

    def latent(self, model: str, operand: str | int | np.ndarray, label: int | str = 0) -> torch.Tensor:
        """A latent (latent_dim,) from an operand: a seed ("seed 3" or 3), a class name (its centroid,
        e.g. "Sneaker"), or a prepared 28x28 uint8 image (inverted)."""
        if isinstance(operand, np.ndarray):
            return self.invert(model, operand, label=label).z.to(self.device)
        text = str(operand).strip()
        number = text.removeprefix("seed").strip()
        if number.lstrip("-").isdecimal():  # not isdigit: "²" is a digit that int() refuses
            seed = check_int("Seed", int(number), 0, MAX_SEED)
            return seed_to_z(seed, 1, self.model(model).latent_dim, device=self.device)[0]
        return self.directions(model).centroids[class_index(text.removeprefix("class").strip())].to(self.device)

    @torch.inference_mode()
    def decode(self, model: str, z: torch.Tensor, label: int | str = 0) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, 1, 28, 28); conditional models draw class `label`."""
        return self.model(model).decode(z.to(self.device), self.label(model, label))

    @torch.inference_mode()
    def every_class(self, model: str, z: torch.Tensor) -> torch.Tensor:
        """Images (10, 1, 28, 28): the latent z (latent_dim,) through each class label of a conditional
        model, so what the latent encodes apart from the class (pose, shape, shade) stays in view."""
        if not MODELS[family_of(model)].conditional:
            raise ValueError(f"{model} has no class input; pick cgan or flow to see a latent as every class.")
        labels = torch.arange(len(CLASS_NAMES), device=self.device)
        return self.model(model).decode(z.to(self.device)[None].expand(len(labels), -1), labels)

    def arithmetic(self, model: str, a, b, c, label: int | str = 0) -> torch.Tensor:
        """Images (4, 1, 28, 28): the operands A, B, C (each as in `latent`) and A - B + C, decoded."""
        latents = [self.latent(model, operand, label) for operand in (a, b, c)]
        return self.decode(model, torch.stack([*latents, latents[0] - latents[1] + latents[2]]), label)

    def move(
        self,
        model: str,
        z: torch.Tensor,
        target: int | str | None = None,
        amount: float = 0.0,
        keep: list[int | str] | tuple = (),
        components: list[float] | tuple = (),
    ) -> torch.Tensor:
        """z moved `amount` along class `target`'s direction (made orthogonal to the `keep` classes'
        directions, InterFaceGAN's conditional manipulation) and along the principal directions."""
        amount = check_float("Amount", amount, -MAX_MOVE, MAX_MOVE)
        components = [check_float(f"Component {i + 1}", v, -MAX_MOVE, MAX_MOVE) for i, v in enumerate(components)]
        found = self.directions(model)
        if len(components) > len(found.principal):
            raise ValueError(f"{model} has {len(found.principal)} principal directions, got {len(components)} amounts.")
        vectors, amounts = [], []
        if target is not None and amount:
            index = class_index(target)
            fixed = [class_index(name) for name in keep if class_index(name) != index]
            direction = found.classes[index]
            if fixed:
                direction = orthogonalise(direction, found.classes[fixed])
            vectors.append(direction)
            amounts.append(amount)
        vectors += list(found.principal[: len(components)])
        amounts += components
        return move(z.cpu(), vectors, amounts).to(self.device)

    def warm_up(self) -> None:
        """Compute the studio's directions and the latent map now (in the background, before the first
        click); what cannot be computed (no Fashion-MNIST files, no VAE) is logged and left for later."""
        for name in self.generative():
            if movable(name):
                try:
                    self.directions(name)
                except (ValueError, OSError) as exc:
                    logger.warning("Studio directions for %s unavailable: %s", name, exc)
        try:
            self.map_picture()
        except (ValueError, OSError) as exc:
            logger.warning("No latent map: %s", exc)

    def latent_map(self) -> LatentMap:
        """The 2-D PCA map of the VAE's posterior means of the test set (computed once)."""
        vae = self.vae()
        with self._studio_lock:
            if self._map is None:
                test = load_fashion_mnist("test")
                self._map = LatentMap.fit(posterior_means(vae, test.images), test.labels)
                self._map_images = test.images
            return self._map

    def map_picture(self) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """The latent map drawn once: an RGB image (H, W, 3) and its coordinate bounds."""
        found = self.latent_map()
        with self._studio_lock:
            if self._map_picture is None:
                self._map_picture = scatter(found.points.numpy(), found.labels.numpy())
            return self._map_picture

    @torch.inference_mode()
    def map_point(self, x: float, y: float, k: int = 8) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Decode map point (x, y) with the VAE; also its k nearest test images (uint8) and their labels."""
        x = check_float("x", x, -MAX_MAP, MAX_MAP)
        y = check_float("y", y, -MAX_MAP, MAX_MAP)
        found = self.latent_map()
        image = to_uint8(self.vae().decode(found.to_latent(x, y)[None].to(self.device)))[0].numpy()
        nearest = found.nearest(x, y, k)
        return image, self._map_images[nearest].numpy(), found.labels[nearest].tolist()

    @torch.inference_mode()
    def keyframes(
        self,
        model: str,
        operands: str | list,
        steps: int = 8,
        method: str = "slerp",
        label: int | str = 0,
        images: list | None = None,
    ) -> torch.Tensor:
        """Images along a path through 2 to MAX_KEYFRAMES keyframes, `steps` frames per segment.

        `operands` lists them (as `latent` takes them), or is the text of such a list (see
        `parse_keyframes`), whose "image N" refers to the N-th of the uploads `images`.
        """
        if isinstance(operands, str) or operands is None:
            operands = parse_keyframes(operands, images or [])
        if not 2 <= len(operands) <= MAX_KEYFRAMES:
            raise ValueError(f"Give between 2 and {MAX_KEYFRAMES} keyframes, got {len(operands)}.")
        steps = check_int("Steps", steps, 2, MAX_STEPS)
        latents = [self.latent(model, operand, label) for operand in operands]
        segments = [interpolate(a, b, steps, method)[:-1] for a, b in zip(latents, latents[1:])]
        path = torch.cat([*segments, latents[-1][None]])
        return self.decode(model, path, label)


def movable(model: str) -> bool:
    """Whether the studio's directions apply to `model`: a family without a class input, or one that can
    also work without a class (flow: its noise of real images, inverted with no class, has them)."""
    entry = MODELS[family_of(model)]
    return not entry.conditional or entry.ode


def mask_weights(mask: np.ndarray) -> torch.Tensor:
    """A (28, 28) bool mask, true where pixels are kept, as weights (1, 28, 28), or a ValueError."""
    if mask.shape != (28, 28) or not mask.any():
        raise ValueError("The mask must be 28x28 and leave some pixels to match.")
    return torch.from_numpy(mask.astype(np.float32))[None]


def parse_keyframes(keys: str | None, images: list) -> list[str | np.ndarray]:
    """Keyframe text -> operands: comma-separated seeds ("seed 3"), class names ("Sneaker") and
    "image N", the N-th of the uploads `images` (a file path, bytes or array), prepared to 28x28."""
    if not isinstance(keys, str):
        raise ValueError('List the keyframes as text, comma-separated, e.g. "seed 0, Sneaker, image 1".')
    operands: list[str | np.ndarray] = []
    for key in (part.strip() for part in keys.split(",")):
        if key.lower().startswith("image"):
            number = key[5:].strip()
            if not images:
                raise ValueError(f"{key!r}: upload the keyframe images first.")
            if not number.isdecimal() or not 1 <= int(number) <= len(images):
                raise ValueError(f"{key!r}: write image 1 to image {len(images)} for the {len(images)} uploaded.")
            operands.append(prepare_upload(images[int(number) - 1]).image)
        elif key:
            operands.append(key)
    return operands
