"""The lab: every model loaded once on one device, and each action the app offers as a method.

Methods take plain values (names, seeds, counts, uint8 images) and return tensors or uint8 arrays;
they validate their arguments with a `ValueError` that names the bad value, and run under
`torch.inference_mode()`. The app only turns these results into components.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import class_index, to_tensor, to_uint8
from .device import resolve_device
from .editing import EditParams, apply_edits
from .flow_actions import FlowActions
from .hub import HubRepo, card_metrics, download_checkpoint
from .latent import MAX_SEED, interpolate, lerp, seed_to_z, slerp
from .limits import (
    MAX_APP_SEED,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_SAMPLING_STEPS,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_TRUNCATION,
    check_float,
    check_int,
    without_server_paths,
)
from .metrics import psnr
from .registry import MODELS, entry_of, family_of, load_model, parse_model_repos
from .studio import StudioActions

logger = logging.getLogger(__name__)

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


class Lab(StudioActions, FlowActions):
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
        self._init_studio()
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
        """The class index `model` is given: a conditional family's class by index or name (None: none,
        where the family samples without one; the cGAN refuses it), and None for a family without
        classes. (The page's "any class" is None by then: `ui.components.class_of`.)"""
        if not entry_of(model).conditional or label is None:
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
        knob = entry_of(model).sample_knob
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
            if not entry_of(model).invertible:
                raise ValueError(
                    f"Model {model!r} has no encoder; use a seed for its endpoints, or pick the VAE or flow."
                )
            return net.invert(to_tensor(image).to(self.device), self.label(model, label))[0]
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

    @torch.inference_mode()
    def decode(self, model: str, z: torch.Tensor, label: int | str = 0) -> torch.Tensor:
        """Latents (N, latent_dim) -> images (N, 1, 28, 28); conditional models draw class `label`."""
        return self.model(model).decode(z.to(self.device), self.label(model, label))
