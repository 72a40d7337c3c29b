"""The lab: every model loaded once on one device, and each action the app offers as a method.

Methods take plain values (names, seeds, counts, uint8 images) and return tensors or uint8 arrays;
they validate their arguments with a `ValueError` that names the bad value, and run under
`torch.inference_mode()`. The app only turns these results into components.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import class_index, to_tensor, to_uint8
from .device import resolve_device
from .editing import EditParams, apply_edits
from .hub import HubRepo, card_metrics, download_checkpoint
from .latent import MAX_SEED, interpolate, seed_to_z
from .metrics import psnr
from .registry import MODELS, load_model

logger = logging.getLogger(__name__)

MAX_IMAGES = 64  # images per request in the app
MAX_STEPS = 32  # interpolation steps
MAX_TRUNCATION = 4.0
MAX_TEMPERATURE = 3.0
ROUNDTRIP_SAMPLES = 8  # posterior samples shown next to a reconstruction


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


def check_int(name: str, value: float | int, low: int, high: int) -> int:
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


class Lab:
    """Loaded models plus the operations of each app tab."""

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
        sources = sources or {}
        for name, entry in MODELS.items():
            source = sources.get(name, entry.checkpoint_path)
            if isinstance(source, HubRepo):
                try:
                    folder = download_checkpoint(source)
                    self.models[name] = load_model(name, self.device, folder)
                except (ValueError, OSError) as exc:
                    self.notices.append(f"{name}: could not load {source} ({exc}); using the bundled checkpoint.")
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
                self.broken[name] = str(exc)
                logger.warning("Model %s did not load and is left out: %s", name, exc)
                continue
            self.metrics[name] = card_metrics(source)

    # --- what is available -------------------------------------------------------------------

    def generative(self) -> list[str]:
        """Names of the loaded generative models, in registry order."""
        return [name for name in self.models if MODELS[name].generative]

    def model(self, name: str, generative: bool = True) -> torch.nn.Module:
        """The loaded model `name`, or a ValueError saying why it is not available."""
        if name in self.broken:
            raise ValueError(f"Model {name!r} is unavailable: its checkpoint did not load.")
        if name not in self.models or (generative and not MODELS[name].generative):
            choices = self.generative() if generative else list(self.models)
            raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(choices)}.")
        return self.models[name]

    def vae(self):
        """The VAE, which the round-trip, edit and image-endpoint features need."""
        return self.model("vae")

    # --- generate ----------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        model: str,
        seed: int,
        num: int,
        truncation: float = 0.0,
        temperature: float = 1.0,
        label: int | str = 0,
    ) -> torch.Tensor:
        """`num` images (num, 1, 28, 28) from seeds seed..seed+num-1; truncation 0 means off.

        `label` (class index or name) is used by conditional models and ignored by the others.
        """
        net = self.model(model)
        seed = check_int("Seed", seed, 0, MAX_SEED - MAX_IMAGES)
        num = check_int("Number of images", num, 1, MAX_IMAGES)
        extra = {"label": class_index(label)} if MODELS[model].conditional else {}
        if MODELS[model].sample_knob == "truncation":
            truncation = check_float("Truncation", truncation, 0.0, MAX_TRUNCATION)
            return net.sample(num, seed=seed, truncation=truncation or None, **extra)
        temperature = check_float("Temperature", temperature, 0.0, MAX_TEMPERATURE)
        return net.sample(num, seed=seed, temperature=temperature, **extra)

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
    def endpoint(self, model: str, seed: int, image: np.ndarray | None = None) -> torch.Tensor:
        """A latent (latent_dim,): the VAE's posterior mean of `image` when given, else seed's z."""
        net = self.model(model)
        if image is not None:
            if not hasattr(net, "encode"):
                raise ValueError(f"Model {model!r} has no encoder; use a seed for its endpoints, or pick the VAE.")
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
        a = self.endpoint(model, seed_a, image_a)
        b = self.endpoint(model, seed_b, image_b)
        path = interpolate(a, b, steps, method)
        if MODELS[model].conditional:
            return self.model(model).decode(path, class_index(label))
        return self.model(model).decode(path)

    # --- classic edits and projection --------------------------------------------------------

    @torch.inference_mode()
    def edit(self, image: np.ndarray, params: EditParams) -> tuple[np.ndarray, np.ndarray]:
        """Apply classic edits to a prepared 28x28 image, then project it onto the VAE's manifold."""
        edited = apply_edits(torch.from_numpy(image)[None], params)[0].numpy()  # (28, 28) uint8
        projected = self.vae().reconstruct(to_tensor(edited).to(self.device))
        return edited, to_uint8(projected)[0].numpy()
