"""Class-conditional DCGAN for 28x28 grayscale: pick the class, the seed picks the item.

Generator: the DCGAN generator of `dcgan.py` fed [z, embedding(y)] (Mirza and Osindero 2014).
Discriminator: the DCGAN discriminator with a projection head (Miyato and Koyama 2018),
    D(x, y) = w . h(x) + embedding(y) . h(x),
which scores "is this a real image *of class y*" rather than concatenating the label to the input.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .data import CLASS_NAMES, class_index
from .dcgan import discriminator_body, generator_layers, init_weights
from .hub import HubModelMixin
from .latent import seed_to_z


@dataclass
class CGANConfig:
    latent_dim: int = 100  # size of z
    num_classes: int = len(CLASS_NAMES)
    embed_dim: int = 32  # size of the generator's class embedding, concatenated to z
    gen_width: int = 64  # channels of the generator's last hidden layer (doubled before it)
    disc_width: int = 64  # channels of the discriminator's first layer (doubled after it)
    image_channels: int = 1  # grayscale
    gen_hidden: int = 0  # > 0: a fully connected layer of this size after [z, embedding] (as in dcgan.py)
    disc_hidden: int = 0  # > 0: a fully connected layer of this size before the projection head


class ConditionalGenerator(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["cgan", "gan", "conditional-image-generation", "fashion-mnist"],
    license="mit",
):
    """(z (B, latent_dim), labels (B,)) -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, config: CGANConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        # The DCGAN generator, fed [z, embedding(y)] instead of z.
        self.net = generator_layers(
            config.latent_dim + config.embed_dim, config.gen_width, config.image_channels, config.gen_hidden
        )
        self.apply(init_weights)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([z.reshape(z.shape[0], -1), self.embed(labels)], dim=1)
        return self.net(inputs.reshape(inputs.shape[0], -1, 1, 1))

    def decode(self, z: torch.Tensor, label: int | str | torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, latent_dim) and labels (B,) or one label -> images (B, 1, 28, 28) in [-1, 1]."""
        if label is None:
            raise ValueError("The cGAN draws one class at a time: give a class label.")
        if not isinstance(label, torch.Tensor):
            label = torch.full((z.shape[0],), class_index(label), dtype=torch.long, device=z.device)
        return self(z, label)

    @torch.inference_mode()
    def sample(
        self, num: int, seed: int = 0, label: int | str | None = 0, truncation: float | None = None
    ) -> torch.Tensor:
        """`num` images of class `label` (index or name) from seeds seed..seed+num-1."""
        device = next(self.parameters()).device
        z = seed_to_z(seed, num, self.latent_dim, truncation=truncation, device=device)
        return self.decode(z, label)


class ProjectionDiscriminator(
    nn.Module, HubModelMixin, library_name="genmodels", tags=["cgan", "fashion-mnist"], license="mit"
):
    """(images (B, 1, 28, 28), labels (B,)) -> real/fake logits (B,).

    The DCGAN discriminator's body and linear head (the same layers, `dcgan.discriminator_body`);
    the head w . h(x) gains the projection term embedding(y) . h(x), so the score asks "is this a
    real image of class y".
    """

    def __init__(self, config: CGANConfig):
        super().__init__()
        self.config = config
        self.body, features = discriminator_body(config.image_channels, config.disc_width, config.disc_hidden)
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(config.num_classes, features)
        self.apply(init_weights)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.linear(h).flatten() + (self.embed(labels) * h).sum(dim=1)
