"""DCGAN for 28x28 grayscale (Radford et al. 2016), sized down from the tutorial's 64x64 recipe.

The tutorial's generator is ConvTranspose -> BatchNorm -> ReLU blocks ending in Tanh, and its
discriminator strided Conv -> LeakyReLU(0.2) blocks with BatchNorm inside. Here the first
transposed convolution maps z to a 7x7 map and two stride-2 steps reach 28x28.

The two networks play the tutorial's minimax game
    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))],
trained in `training/train_gan.py`. The discriminator returns logits (no final Sigmoid): the loss
applies the sigmoid inside `binary_cross_entropy_with_logits`, which is numerically stable.
"""

from dataclasses import dataclass

import torch
from torch import nn

from .hub import HubModelMixin
from .latent import seed_to_z


@dataclass
class DCGANConfig:
    latent_dim: int = 100  # size of z, the tutorial's 100
    gen_width: int = 64  # channels of the generator's last hidden layer (doubled before it)
    disc_width: int = 64  # channels of the discriminator's first layer (doubled after it)
    image_channels: int = 1  # grayscale
    spectral_norm: bool = False  # discriminator: spectral normalisation in place of BatchNorm (Miyato et al. 2018)
    gen_hidden: int = 0  # > 0: a fully connected layer of this size between z and the 7x7 map (InfoGAN)
    disc_hidden: int = 0  # > 0: a fully connected layer of this size before the discriminator's logit (InfoGAN)


class Generator(
    nn.Module,
    HubModelMixin,
    library_name="genmodels",
    tags=["dcgan", "gan", "fashion-mnist", "unconditional-image-generation"],
    license="mit",
    pipeline_tag="unconditional-image-generation",
):
    """z (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        self.net = generator_layers(config.latent_dim, config.gen_width, config.image_channels, config.gen_hidden)
        self.apply(init_weights)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], -1, 1, 1))

    def decode(self, z: torch.Tensor, label: int | str | torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1]; `label` is ignored (no classes)."""
        return self(z)

    @torch.inference_mode()
    def sample(
        self, num: int, seed: int = 0, label: int | str | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """`num` images from seeds seed..seed+num-1, optionally truncated; `label` is ignored."""
        device = next(self.parameters()).device
        return self.decode(seed_to_z(seed, num, self.latent_dim, truncation=truncation, device=device))


class Discriminator(nn.Module, HubModelMixin, library_name="genmodels", tags=["dcgan", "fashion-mnist"], license="mit"):
    """Images (B, 1, 28, 28) in [-1, 1] -> real/fake logits (B,)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        self.body, features = discriminator_body(
            config.image_channels, config.disc_width, config.disc_hidden, config.spectral_norm
        )
        self.linear = spectral_norm(nn.Linear(features, 1)) if config.spectral_norm else nn.Linear(features, 1)
        if not config.spectral_norm:
            self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.body(x)).flatten()


def spectral_norm(layer: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018): bounds the layer's Lipschitz constant."""
    return nn.utils.parametrizations.spectral_norm(layer)


def discriminator_body(
    image_channels: int, width: int, hidden: int = 0, use_spectral_norm: bool = False
) -> tuple[nn.Sequential, int]:
    """The discriminator's features h(x): images (B, 1, 28, 28) -> (B, F), and F.

    The DCGAN and the cGAN's projection discriminator share these layers (so a cGAN can start from a
    trained DCGAN's); each puts its own linear head on h(x). With `hidden` > 0 a fully connected layer
    of that size comes last (InfoGAN). Spectral normalisation replaces BatchNorm when asked, which
    steadies training without BatchNorm's dependence on the batch.
    """
    sn = spectral_norm if use_spectral_norm else (lambda layer: layer)

    def norm(channels: int, layer: type[nn.Module]) -> nn.Module:
        return nn.Identity() if use_spectral_norm else layer(channels)

    body = nn.Sequential(
        # (B, 1, 28, 28) -> (B, w, 14, 14); no BatchNorm on the input layer (DCGAN paper)
        sn(nn.Conv2d(image_channels, width, 4, 2, 1, bias=False)),
        nn.LeakyReLU(0.2, inplace=True),
        # -> (B, 2w, 7, 7)
        sn(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)),
        norm(width * 2, nn.BatchNorm2d),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Flatten(),  # (B, 2w * 49)
    )
    features = width * 2 * 7 * 7
    if hidden:  # (B, 2w * 49) -> (B, hidden)
        body.extend(
            [sn(nn.Linear(features, hidden, bias=False)), norm(hidden, nn.BatchNorm1d), nn.LeakyReLU(0.2, True)]
        )
        features = hidden
    return body, features


def generator_layers(in_channels: int, width: int, image_channels: int, hidden: int = 0) -> nn.Sequential:
    """The DCGAN generator's layers: (B, in_channels, 1, 1) -> (B, image_channels, 28, 28) in [-1, 1].

    With `hidden` > 0 a fully connected layer of that size (a 1x1 transposed convolution on the 1x1
    input) comes first, as in the InfoGAN generator that Lucic et al. 2018 use for Fashion-MNIST.
    """
    head = []
    if hidden:
        head = [nn.ConvTranspose2d(in_channels, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(True)]
        in_channels = hidden
    return nn.Sequential(
        *head,
        # (B, in_channels, 1, 1) -> (B, 2w, 7, 7)
        PointToMap(in_channels, width * 2, 7, bias=False),
        nn.BatchNorm2d(width * 2),
        nn.ReLU(True),
        # -> (B, w, 14, 14)
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(True),
        # -> (B, 1, 28, 28)
        nn.ConvTranspose2d(width, image_channels, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


class PointToMap(nn.ConvTranspose2d):
    """A transposed convolution from a 1x1 input to a k x k map (stride 1, no padding), computed as the
    matrix product it is: out[b, o, i, j] = sum_c x[b, c] W[c, o, i, j]. Same weights and results as
    nn.ConvTranspose2d (up to float rounding) without its general path, which on one image took 4 of
    the generator's 6.7 ms of forward and backward pass (CPU, one thread): GAN inversion runs it about
    a hundred times per image."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, 1, 0, bias=bias)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.shape[-2:] != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        out = (x.flatten(1) @ self.weight.flatten(1)).view(len(x), self.out_channels, *self.kernel_size)
        return out if self.bias is None else out + self.bias[:, None, None]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv and linear weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0.

    Before BatchNorm a layer's scale sets its effective learning rate (the step is relative to the
    weight's norm), so every layer starts at the same 0.02: torch's default for a wide nn.Linear is
    about 0.007, which made it learn several times faster than the equivalent convolution.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
