"""Convolutional VAE for 28x28 grayscale (Kingma and Welling 2014), the tutorial's encoder/decoder pair.

Trained on the ELBO from the tutorial,
    log p(x) >= E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z)),
with a diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), the prior p(z) = N(0, I) and
one of two likelihoods p(x|z) over pixel intensities in [0, 1]:
- "bernoulli": the reconstruction term is a binary cross-entropy (the classic choice);
- "gaussian": N(x; m(z), gamma^2 I) with one learned gamma (Dai and Wipf 2019). As gamma shrinks
  the model weighs reconstruction more, which gives sharper images than a fixed-variance decoder.
Inputs and outputs follow the package convention: tensors in [-1, 1].
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .hub import HubModelMixin
from .latent import seed_to_mixture_z, seed_to_z


@dataclass
class VAEConfig:
    latent_dim: int = 16  # size of z
    width: int = 32  # channels of the first conv layer (doubled in the second)
    hidden_dim: int = 256  # fully connected layer between the conv stack and (mu, logvar)
    image_channels: int = 1  # grayscale
    likelihood: str = "bernoulli"  # p(x|z): "bernoulli" or "gaussian" (with a learned variance)
    # 0: sample z from the N(0, I) prior. K > 0: from a K-component Gaussian mixture fitted to the
    # training set's posterior means after training (ex-post density estimation, Ghosh et al. 2020),
    # which avoids decoding the "holes" between the aggregate posterior and N(0, I).
    prior_components: int = 0


class VAE(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["vae", "fashion-mnist", "unconditional-image-generation"],
    license="mit",
    pipeline_tag="unconditional-image-generation",
):
    """encode: images -> (mu, logvar); decode: z -> images; forward returns all three."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        w, h = config.width, config.hidden_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(config.image_channels, w, 4, 2, 1),  # (B, w, 14, 14)
            nn.ReLU(True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),  # (B, 2w, 7, 7)
            nn.ReLU(True),
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, h),
            nn.ReLU(True),
            nn.Linear(h, 2 * config.latent_dim),  # mu and logvar side by side
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, h),
            nn.ReLU(True),
            nn.Linear(h, 2 * w * 7 * 7),
            nn.ReLU(True),
            nn.Unflatten(1, (2 * w, 7, 7)),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1),  # (B, w, 14, 14)
            nn.ReLU(True),
            nn.ConvTranspose2d(w, config.image_channels, 4, 2, 1),  # (B, 1, 28, 28) Bernoulli logits
        )
        if config.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"Unknown likelihood {config.likelihood!r}; use 'bernoulli' or 'gaussian'.")
        if config.likelihood == "gaussian":
            self.log_gamma = nn.Parameter(torch.zeros(()))  # log of the decoder's standard deviation
        k, d = config.prior_components, config.latent_dim
        if k > 0:  # filled by `fit_prior`, saved with the weights
            self.register_buffer("prior_weights", torch.full((k,), 1.0 / k))
            self.register_buffer("prior_means", torch.zeros(k, d))
            self.register_buffer("prior_scale_trils", torch.eye(d).repeat(k, 1, 1))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 1, 28, 28) in [-1, 1] -> posterior mean and log-variance, each (B, latent_dim)."""
        mu, logvar = self.encoder((x + 1.0) / 2.0).chunk(2, dim=1)
        return mu, logvar

    @torch.inference_mode()
    def invert(self, x: torch.Tensor, label: int | str | torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [-1, 1] -> their latents (B, latent_dim): the posterior means (the VAE
        has no class; `label` is taken, as every family that inverts takes it, and ignored)."""
        return self.encode(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, latent_dim) -> logits (B, 1, 28, 28) of the decoder's mean intensity in [0, 1]."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor, label: int | str | torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1] (the decoder's means); `label` is ignored."""
        return torch.sigmoid(self.decode_logits(z)) * 2.0 - 1.0

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Reparameterised pass: returns (Bernoulli logits, mu, logvar)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode_logits(z), mu, logvar

    def prior_z(self, num: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """`num` latents from the sampling prior (N(0, I) or the fitted mixture), seeds seed..seed+num-1."""
        device = next(self.parameters()).device
        if self.config.prior_components > 0:
            return seed_to_mixture_z(
                seed,
                num,
                self.prior_weights,
                self.prior_means,
                self.prior_scale_trils,
                temperature=temperature,
                device=device,
            )
        return seed_to_z(seed, num, self.latent_dim, device=device) * temperature

    @torch.inference_mode()
    def sample(self, num: int, seed: int = 0, label: int | str | None = None, temperature: float = 1.0) -> torch.Tensor:
        """`num` images decoded from prior draws (seeds seed..seed+num-1), scaled by `temperature`; no classes."""
        return self.decode(self.prior_z(num, seed, temperature))

    @torch.no_grad()
    def fit_prior(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        """Set the sampling mixture from fitted weights (K,), means (K, d) and covariances (K, d, d)."""
        k = self.config.prior_components
        if weights.shape != (k,) or means.shape != (k, self.latent_dim):
            raise ValueError(f"Expected a {k}-component mixture in {self.latent_dim} dimensions.")
        self.prior_weights.copy_(weights / weights.sum())
        self.prior_means.copy_(means)
        self.prior_scale_trils.copy_(torch.linalg.cholesky(covariances.double()).float())

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Encode to the posterior mean and decode: images in [-1, 1] -> images in [-1, 1]."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def negative_elbo(
        self, logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
    ):
        """Negative ELBO per image, split as (total, reconstruction, KL); `x` in [-1, 1].

        Reconstruction -log p(x|z), summed over pixels: BCE(logits, x01) for the Bernoulli likelihood;
        ||x01 - m||^2 / (2 gamma^2) + D log gamma + D/2 log(2 pi) for the Gaussian one.
        KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar))  (Kingma and Welling, App. B).
        """
        batch = x.shape[0]
        target = (x + 1.0) / 2.0
        if self.config.likelihood == "gaussian":
            pixels = target[0].numel()
            squared = (target - torch.sigmoid(logits)).pow(2).sum() / batch
            reconstruction = squared / (2 * torch.exp(2 * self.log_gamma)) + pixels * (
                self.log_gamma + 0.5 * math.log(2 * math.pi)
            )
        else:
            reconstruction = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / batch
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / batch
        return reconstruction + beta * kl, reconstruction, kl
