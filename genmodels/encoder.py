"""An encoder that guesses a GAN generator's latent from an image, for fast inversion.

A GAN has no encoder, so bringing an image into its latent space is an optimisation over z. From
random starts it needs many steps and restarts (150 Adam steps from 16 starts: about 20 dB in 1.4 s);
from a good first guess a few quasi-Newton steps do better. In-domain GAN inversion (Zhu et al. 2020)
trains that guess: an encoder E with the generator G fixed, so that G(E(x)) reconstructs x, on real
images (the domain inversion is for) and on generated ones, where the true latent is known too:

    loss = |G(E(x)) - x|^2  +  |G(E(G(z))) - G(z)|^2  +  w |E(G(z)) - z|^2  +  v |F(G(E(x))) - F(x)|^2

with F a feature network (the recipe's VGG; here our classifier's conv feature maps; v = 0 for the
DCGAN's encoder, trained before the term existed). The inversion then refines E(x) by L-BFGS on the
pixel error (genmodels.studio.invert). Trained by `training/train_encoder.py`; one encoder per
generator, named after it ("dcgan-encoder", "cgan-encoder", which also takes the class).
"""

from dataclasses import dataclass

import torch
from torch import nn

from .hub import HubModelMixin


@dataclass
class EncoderConfig:
    latent_dim: int = 100  # size of the generator's z
    width: int = 64  # channels of the first conv layer (doubled twice after it)
    hidden: int = 256  # fully connected layer before the latent
    num_classes: int = 0  # > 0: the class joins the image (the encoder of a conditional generator)
    image_channels: int = 1


class Encoder(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["gan-inversion", "encoder", "fashion-mnist"],
    license="mit",
):
    """Images (B, 1, 28, 28) in [-1, 1] (and labels (B,) for a conditional generator) -> z (B, latent_dim)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        width = config.width
        self.body = nn.Sequential(
            # (B, 1, 28, 28) -> (B, w, 14, 14) -> (B, 2w, 7, 7) -> (B, 4w, 4, 4)
            nn.Conv2d(config.image_channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 2, width * 4, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(width * 4 * 16, config.hidden),
        )
        self.class_embedding = nn.Embedding(config.num_classes, config.hidden) if config.num_classes else None
        self.head = nn.Sequential(nn.LeakyReLU(0.2, inplace=True), nn.Linear(config.hidden, config.latent_dim))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.body(x)
        if self.class_embedding is not None:
            if labels is None:
                raise ValueError("This encoder belongs to a conditional generator: give the images' classes.")
            hidden = hidden + self.class_embedding(labels)
        return self.head(hidden)
