"""The latent studio's maths: inversion, meaningful directions, latent arithmetic and a 2-D latent map.

- Inversion brings an image into a model's latent space. The VAE has an encoder: z = mu(x). A GAN
  has none, so z is found by optimisation (Abdal et al. 2019; Xia et al. 2022): minimise the squared
  pixel error ||M * (G(z) - x)||^2 over z, from a trained encoder's guess by L-BFGS (in-domain
  inversion, Zhu et al. 2020; genmodels.encoder), or with Adam from several seeded starting points at
  once, keeping the best. A mask M (1 = keep) restricts the loss to part of the image, which is how masked
  regeneration fills the rest consistently.
- Class directions (InterFaceGAN, Shen et al. 2020): where in latent space the classifier (GANs: on
  generated samples) or the labels (VAE: posterior means of the training set) put class c, as the
  unit vector from the overall mean to class c's mean; optionally made orthogonal to other classes'
  directions (InterFaceGAN's conditional manipulation, n1 - (n1 . n2) n2, by Gram-Schmidt).
- Principal directions (GANSpace, Härkönen et al. 2020): PCA where it is meaningful, the VAE's
  posterior means, or a GAN's first hidden layer, whose components are carried back to z by a
  linear regression of z on the PCA coordinates.
- The latent map: PCA of the VAE's posterior means of the test set to 2-D; a point of the map is
  decoded through the inverse projection (the other coordinates at their mean), for any latent size.

Everything is seeded: same inputs, same outputs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .data import CLASS_NAMES, class_index, load_fashion_mnist, to_tensor, to_uint8
from .flow import INPAINT_RESAMPLE, INPAINT_STEPS
from .hub import write_atomic
from .images import scatter
from .latent import MAX_SEED, interpolate, seed_to_z
from .limits import (
    MAX_KEYFRAMES,
    MAX_MAP,
    MAX_MOVE,
    MAX_STEPS,
    REFINE_ITERATIONS,
    check_float,
    check_int,
    without_server_paths,
)
from .registry import entry_of, latent_encoder_name, refine_iterations

logger = logging.getLogger(__name__)

INVERT_STEPS = 150  # Adam steps of GAN inversion
REFINE_STEPS = 15  # Adam steps of a masked VAE inversion, which starts from the encoder's guess
INVERT_RESTARTS = 16  # starting points optimised together
INVERT_LR = 0.08
INVERT_UPDATES = 2  # results an optimisation yields for the page: 1 on the way, then the last
DIRECTION_SAMPLES = 16_384  # samples (GANs) behind the class directions (the first 4,096 for PCA)
PCA_SAMPLES = 4096  # GAN samples whose first-layer activations the principal directions come from
PRINCIPAL_COMPONENTS = 8
# Computed directions are kept here, named by a hash of the weights they come from and of the settings
# (a cold start of the app spends about a minute of CPU on them; a warm one reads a few KB).
DIRECTIONS_CACHE = Path(os.environ.get("GENMODELS_CACHE") or Path.home() / ".cache" / "genmodels") / "directions"


@dataclass
class Inversion:
    """An image brought into latent space."""

    z: torch.Tensor  # (latent_dim,)
    image: torch.Tensor  # (1, 28, 28) in [-1, 1], decoded from z
    psnr: float  # dB, of the decoded image to the target (on the kept pixels when masked)
    seconds: float
    fraction: float = 1.0  # of the optimisation done (< 1: an intermediate result, while inverting)


def masked_psnr(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB on [0, 1] pixels of images in [-1, 1], over the pixels where mask is 1."""
    error = ((prediction - target) / 2) ** 2
    if mask is not None:
        error = error[mask.expand_as(error) > 0.5]
    mse = error.mean().clamp_min(1e-10)
    return float(10 * torch.log10(1 / mse))


def invert(model: nn.Module, target: torch.Tensor, *, progress=None, **options) -> Inversion:
    """The latent of `target` (1, 28, 28) in [-1, 1]: the last result of `inversion_steps(model,
    target, **options)`, calling `progress(fraction)` while it optimises."""
    return last_result(inversion_steps(model, target, **options), progress)


def last_result(results: Iterator[Inversion], progress=None) -> Inversion:
    """The final result of an inversion's stream, reporting the fraction done of the ones before it."""
    for result in results:
        if progress is not None and result.fraction < 1:
            progress(result.fraction)
    return result


def inversion_steps(
    model: nn.Module,
    target: torch.Tensor,
    *,
    has_encoder: bool = False,
    latent_encoder: nn.Module | None = None,
    label: int | None = None,
    mask: torch.Tensor | None = None,
    steps: int = INVERT_STEPS,
    restarts: int = INVERT_RESTARTS,
    seed: int = 0,
    updates: int = INVERT_UPDATES,
    refine_iterations: int = REFINE_ITERATIONS,
) -> Iterator[Inversion]:
    """Bring `target` (1, 28, 28) in [-1, 1] into `model`'s latent space, yielding the best result so
    far `updates` times while optimising (for a page to show) and the final one last (fraction 1).

    - `has_encoder` (the VAE): the encoder's mean, at once; under a mask refined by Adam from it.
    - `latent_encoder` (a GAN with a trained encoder, genmodels.encoder): its guess E(x), refined by
      `refine_iterations` of L-BFGS on the pixel error (quasi-Newton: on this 100-d problem from a
      good start it gains in 70 iterations more than Adam from 16 random starts does not in 150 steps).
    - otherwise (a GAN): Adam from `restarts` seeded starts, `steps` steps, the best start kept.

    With `mask` (1, 28, 28), 1 = pixels to match, the loss ignores the rest; the encoders, trained on
    whole images, then only give the first guess (the VAE) or are not used (a GAN). `label` for a
    conditional generator (and its encoder). The same inputs give the same results.
    """
    started = time.perf_counter()
    device = next(model.parameters()).device
    guessed = has_encoder or (latent_encoder is not None and mask is None)  # a first guess, not seeded starts
    # Normal tensors autograd can save, even when called in inference mode. No yield inside a `with`:
    # a generator suspended there would leave its grad mode on the thread that runs the next request.
    with torch.inference_mode(False), torch.no_grad():
        x = target.detach().clone().to(device)[None]  # (1, 1, 28, 28)
        weights = torch.ones_like(x) if mask is None else mask.detach().clone().to(device)[None].expand_as(x)
        labels = None if label is None else torch.full((1,), label, device=device, dtype=torch.long)
        if has_encoder:
            z = model.encode(x)[0].clone()
        elif guessed:
            z = latent_encoder(x, labels).clone()
        else:
            z = seed_to_z(seed, restarts, model.latent_dim, device=device)
    if has_encoder and mask is None:
        yield _result(model, z[0], x[0], None, label, started)
        return
    if guessed and not has_encoder:
        yield from _refine_lbfgs(model, z, x, labels, label, started, updates, refine_iterations)
        return
    if has_encoder:  # under a mask: the encoder's guess, refined briefly
        steps = min(steps, REFINE_STEPS)
    labels = None if label is None else labels.expand(len(z))
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=INVERT_LR)

    def best() -> torch.Tensor:
        with torch.no_grad():
            return z[(((model.decode(z, labels) - x) ** 2) * weights).flatten(1).sum(1).argmin()].detach().clone()

    every = max(1, -(-steps // updates))
    for step in range(steps):
        with torch.inference_mode(False), torch.enable_grad():  # per step: a page may resume on another thread
            images = model.decode(z, labels)
            per_start = (((images - x) ** 2) * weights).flatten(1).sum(1) / weights.flatten(1).sum(1)
            optimizer.zero_grad(set_to_none=True)
            per_start.sum().backward(inputs=[z])
            optimizer.step()
        if (step + 1) % every == 0 and step + 1 < steps:
            yield _result(model, best(), x[0], mask, label, started, (step + 1) / steps)
    yield _result(model, best(), x[0], mask, label, started)


def _refine_lbfgs(model, z, x, labels, label, started, updates, total) -> Iterator[Inversion]:
    """`total` L-BFGS iterations on the pixel error from the encoder's guess z (1, latent_dim), in
    `updates` chunks."""
    z.requires_grad_(True)
    optimizer = torch.optim.LBFGS([z], lr=1, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = ((model.decode(z, labels) - x) ** 2).mean()
        loss.backward(inputs=[z])
        return loss

    chunk = max(1, -(-total // updates))
    for done in range(0, total, chunk):
        iterations = min(chunk, total - done)  # the history carries over from chunk to chunk
        # torch's default evaluation budget (5/4 of the iterations) is set at construction: set it per chunk.
        optimizer.param_groups[0].update(max_iter=iterations, max_eval=iterations * 5 // 4)
        with torch.inference_mode(False), torch.enable_grad():
            optimizer.step(closure)
        fraction = min(1.0, (done + chunk) / total)
        yield _result(model, z[0].detach().clone(), x[0], None, label, started, fraction)


@torch.inference_mode()
def invert_ode(model: nn.Module, target: torch.Tensor, label: int | None = None) -> Inversion:
    """The noise latent of `target` (1, 28, 28) in [-1, 1] for a model that samples by an ODE (flow):
    the ODE run backwards from the image, with the settings `decode` uses, so decoding returns the
    image up to the solver's error. No optimisation, no restarts."""
    started = time.perf_counter()
    x = target.to(next(model.parameters()).device)[None]  # (1, 1, 28, 28)
    z = model.invert(x, label)[0]
    return _result(model, z, x[0], None, label, started)


def _result(model, z, target, mask, label, started, fraction: float = 1.0) -> Inversion:
    with torch.no_grad():
        image = model.decode(z[None], label)[0]
    psnr = masked_psnr(image, target, mask)
    return Inversion(z=z, image=image, psnr=psnr, seconds=time.perf_counter() - started, fraction=fraction)


# --- directions --------------------------------------------------------------------------------


@dataclass
class Directions:
    """Unit directions in a model's latent space and where the classes sit."""

    classes: torch.Tensor  # (10, latent_dim): unit vector from the overall mean towards class c
    centroids: torch.Tensor  # (10, latent_dim): each class's mean latent
    principal: torch.Tensor  # (PRINCIPAL_COMPONENTS, latent_dim): unit principal directions
    explained: torch.Tensor  # (PRINCIPAL_COMPONENTS,): share of variance of each component

    def save(self, path: str | Path) -> None:
        """Write the directions to a safetensors file, atomically."""
        write_atomic(path, save({key: value.detach().cpu().contiguous() for key, value in asdict(self).items()}))

    @classmethod
    def load(cls, path: str | Path, latent_dim: int) -> Directions | None:
        """Directions saved by `save` for a latent of `latent_dim`; None when the file is missing,
        unreadable, or holds anything else (wrong names or shapes, non-finite values)."""
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError, ValueError):
            return None
        if set(tensors) != {field.name for field in fields(cls)}:
            return None
        principal = tensors["principal"]  # PRINCIPAL_COMPONENTS rows, fewer for a small latent
        components = len(principal) if principal.dim() == 2 and len(principal) <= PRINCIPAL_COMPONENTS else -1
        shapes = {"classes": (len(CLASS_NAMES), latent_dim), "centroids": (len(CLASS_NAMES), latent_dim)}
        shapes.update(principal=(components, latent_dim), explained=(components,))
        if any(
            tuple(tensors[key].shape) != shape or not torch.isfinite(tensors[key]).all()
            for key, shape in shapes.items()
        ):
            return None
        return cls(**tensors)


def fingerprint(modules: list[nn.Module], settings: str) -> str:
    """A hex digest of the modules' weights and buffers (names, dtypes, shapes, bytes) and `settings`."""
    digest = hashlib.sha256(settings.encode())
    for module in modules:
        for name, tensor in module.state_dict().items():
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.inference_mode()
def generated_latents(
    model: nn.Module, classifier: nn.Module, num: int = DIRECTION_SAMPLES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents of seeds 0..num-1 and the classifier's labels for the images they decode to."""
    device = next(model.parameters()).device
    z = torch.cat([seed_to_z(start, min(8192, num - start), model.latent_dim) for start in range(0, num, 8192)])
    z = z.to(device)
    labels = torch.cat([classifier(model.decode(part)).argmax(1) for part in z.split(1024)])
    return z.cpu(), labels.cpu()


@torch.inference_mode()
def posterior_means(vae: nn.Module, images: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    """The VAE's posterior means (N, latent_dim) of uint8 images (N, 28, 28)."""
    device = next(vae.parameters()).device
    return torch.cat(
        [vae.encode(to_tensor(images[s : s + batch]).to(device))[0].cpu() for s in range(0, len(images), batch)]
    )


@torch.inference_mode()
def ode_latents(model: nn.Module, images: torch.Tensor, steps: int | None = None, batch: int = 300) -> torch.Tensor:
    """A flow model's noise (N, latent_dim) of uint8 images (N, 28, 28): its ODE run backwards from each,
    without a class (the unconditional velocity, one pass per evaluation), in `steps` (default: the model's),
    by the network alone: autoguidance's extrapolated velocity, retraced in a few steps, loses the class
    (+4 towards Trouser from seed 4: 12% Trouser with it, 96% without)."""
    device = next(model.parameters()).device
    alone = model.without_guide()
    return torch.cat(
        [
            alone.encode(to_tensor(images[s : s + batch]).to(device), steps=steps).cpu()
            for s in range(0, len(images), batch)
        ]
    )


def class_directions(z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(directions, centroids), each (10, D): unit vectors from the mean of `z` to each class's mean."""
    centroids = torch.stack(
        [z[labels == c].mean(0) if (labels == c).any() else z.mean(0) for c in range(len(CLASS_NAMES))]
    )
    directions = centroids - z.mean(0)
    return directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-8), centroids


def orthogonalise(direction: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """`direction` with the span of `others` (K, D) removed (Gram-Schmidt), renormalised."""
    basis = []
    for other in others:
        for b in basis:
            other = other - (other @ b) * b
        if other.norm() > 1e-6:
            basis.append(other / other.norm())
    for b in basis:
        direction = direction - (direction @ b) * b
    norm = direction.norm()
    if norm < 1e-6:
        raise ValueError("The direction lies in the span of the ones to keep fixed; nothing is left to move along.")
    return direction / norm


def pca(points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (D,), components (k, D) orthonormal, explained variance share (k,)) of points (N, D)."""
    mean = points.mean(0)
    centred = (points - mean).double()
    total = (centred**2).sum()
    if min(centred.shape) > 4 * k:  # wide activations: a randomised low-rank SVD (seeded), far faster
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        _, singular, v = torch.svd_lowrank(centred, q=k + 10, niter=4)
        torch.random.set_rng_state(generator_state)
        vh = v.T
    else:
        _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    variance = singular[:k] ** 2
    return mean, vh[:k].float(), (variance / total).float()


@torch.inference_mode()
def gan_principal_directions(generator: nn.Module, z: torch.Tensor, k: int = PRINCIPAL_COMPONENTS):
    """GANSpace for a DCGAN-style generator: PCA of its first hidden layer, regressed back onto z.

    Returns (directions (k, D) unit vectors in z, explained variance share (k,)).
    """
    device = next(generator.parameters()).device
    first_block = generator.net[: _first_block_end(generator.net)]
    activations = torch.cat(
        [first_block(part.to(device).reshape(len(part), -1, 1, 1)).flatten(1).cpu() for part in z.split(1024)]
    )
    mean, components, explained = pca(activations, k)
    coordinates = (activations - mean) @ components.T  # (N, k)
    # z ~ coordinates @ U: U's row j is the z-direction along which component j grows.
    solution = torch.linalg.lstsq(coordinates.double(), z.double()).solution.float()  # (k, D)
    return solution / solution.norm(dim=1, keepdim=True).clamp_min(1e-8), explained


def _first_block_end(net: nn.Sequential) -> int:
    """Index just after the first ReLU of a generator's layers (its first hidden activation)."""
    for index, layer in enumerate(net):
        if isinstance(layer, nn.ReLU):
            return index + 1
    raise ValueError("The generator has no ReLU layer to read activations from.")


def move(z: torch.Tensor, directions: torch.Tensor, amounts: list[float]) -> torch.Tensor:
    """z + sum_i amounts[i] * directions[i] * sqrt(D) / 4 for unit directions (D, ): one unit of amount is a
    quarter of a typical N(0, I) latent's length (about sqrt(D)), so amount 4 moves one such length."""
    scale = z.shape[-1] ** 0.5 / 4  # one unit = a quarter of a typical N(0, I) latent's length
    offset = sum(amount * direction for amount, direction in zip(amounts, directions) if amount)
    return z + scale * offset if isinstance(offset, torch.Tensor) else z


# --- the latent map ----------------------------------------------------------------------------


@dataclass
class LatentMap:
    """A 2-D PCA map of latents: the projection, its inverse, and the mapped points."""

    mean: torch.Tensor  # (D,)
    axes: torch.Tensor  # (2, D) orthonormal principal directions
    points: torch.Tensor  # (N, 2) map coordinates of the latents
    labels: torch.Tensor  # (N,) their classes
    explained: torch.Tensor  # (2,) variance share of each axis

    @classmethod
    def fit(cls, latents: torch.Tensor, labels: torch.Tensor) -> LatentMap:
        mean, axes, explained = pca(latents, 2)
        return cls(mean=mean, axes=axes, points=(latents - mean) @ axes.T, labels=labels, explained=explained)

    def to_latent(self, x: float, y: float) -> torch.Tensor:
        """The latent (D,) at map point (x, y): the mean plus x and y along the two axes."""
        return self.mean + x * self.axes[0] + y * self.axes[1]

    def nearest(self, x: float, y: float, k: int = 8) -> torch.Tensor:
        """Indices of the k mapped points closest to (x, y)."""
        distances = (self.points - torch.tensor([x, y])).norm(dim=1)
        return distances.topk(min(k, len(distances)), largest=False).indices


# --- the studio's actions, on the lab's models ----------------------------------------------------

DIRECTION_IMAGES = 20_000  # training images behind the VAE's class and principal directions
# ...and the flow's, each inverted by its ODE in a few steps: 600 images at 3 steps take ~11 s on 2 CPU
# cores and move samples into a class as well as 2,000 at 6 steps (classifier's share of the class
# after +4 towards Trouser, Bag, Dress: 1.00, 0.99, 0.91 against 1.00, 1.00, 0.91; from 0.10, 0.05, 0.10).
ODE_DIRECTION_IMAGES = 600
ODE_DIRECTION_STEPS = 3


class StudioActions:
    """The latent studio's actions: inversion, masked regeneration, directions (computed once per set of
    weights and cached on disk), moves, arithmetic, keyframes and the VAE's 2-D map. A mixin of
    `genmodels.lab.Lab`, which holds the models (`model`, `models`, `label`, `decode`, `device`)."""

    def _init_studio(self) -> None:
        self._studio_lock = threading.Lock()  # directions and the map are computed once, on first use
        self._directions: dict[str, Directions] = {}
        self._map: LatentMap | None = None
        self._map_images: torch.Tensor | None = None
        self._map_picture: tuple[np.ndarray, tuple[float, float, float, float]] | None = None

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
        if entry_of(model).denoises:
            if mask is not None:
                raise ValueError(f"{model} does not invert under a mask; regenerate with `inpaint`.")
            yield invert_ode(net, to_tensor(image)[0], self.label(model, label))
            return
        has_encoder, label = entry_of(model).encoder, self.label(model, label)
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
        if entry_of(model).denoises:  # the flow samples the region around the kept pixels (RePaint)
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
        entry = entry_of(model)
        sources = [net] if entry.invertible else [net, self.model("classifier", False)]
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
        entry = entry_of(model)
        if entry.invertible:  # labelled training images, encoded or inverted
            train = load_fashion_mnist("train")
            if entry.encoder:
                latents = posterior_means(net, train.images[:DIRECTION_IMAGES])
            else:  # the ODE backwards, with fewer steps than sampling takes
                latents = ode_latents(net, train.images[:ODE_DIRECTION_IMAGES], ODE_DIRECTION_STEPS)
            classes, centroids = class_directions(latents, train.labels[: len(latents)])
            _, principal, explained = pca(latents, PRINCIPAL_COMPONENTS)
        else:  # a GAN: generated samples labelled by the classifier; GANSpace for the principal ones
            latents, labels = generated_latents(net, self.model("classifier", generative=False))
            classes, centroids = class_directions(latents, labels)
            principal, explained = gan_principal_directions(net, latents[:PCA_SAMPLES])
        return Directions(classes=classes, centroids=centroids, principal=principal, explained=explained)

    def latent(self, model: str, operand: int | str | np.ndarray, label: int | str = 0) -> torch.Tensor:
        """A latent (latent_dim,) from an operand: a seed (an int), a class (its name or index as text:
        its centroid, e.g. "Sneaker"), or a prepared 28x28 uint8 image (inverted)."""
        if isinstance(operand, np.ndarray):
            return self.invert(model, operand, label=label).z.to(self.device)
        if isinstance(operand, (int, np.integer)) and not isinstance(operand, bool):
            seed = check_int("Seed", operand, 0, MAX_SEED)
            return seed_to_z(seed, 1, self.model(model).latent_dim, device=self.device)[0]
        return self.directions(model).centroids[class_index(operand)].to(self.device)

    @torch.inference_mode()
    def every_class(self, model: str, z: torch.Tensor) -> torch.Tensor:
        """Images (10, 1, 28, 28): the latent z (latent_dim,) through each class label of a conditional
        model, so what the latent encodes apart from the class (pose, shape, shade) stays in view."""
        if not entry_of(model).conditional:
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
        operands: list,
        steps: int = 8,
        method: str = "slerp",
        label: int | str = 0,
    ) -> torch.Tensor:
        """Images along a path through 2 to MAX_KEYFRAMES keyframes (operands as `latent` takes them),
        `steps` frames per segment."""
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
    entry = entry_of(model)
    return not entry.conditional or entry.any_class


def mask_weights(mask: np.ndarray) -> torch.Tensor:
    """A (28, 28) bool mask, true where pixels are kept, as weights (1, 28, 28), or a ValueError."""
    if mask.shape != (28, 28) or not mask.any():
        raise ValueError("The mask must be 28x28 and leave some pixels to match.")
    return torch.from_numpy(mask.astype(np.float32))[None]
