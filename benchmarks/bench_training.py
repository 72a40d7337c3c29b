"""Training throughput: our GAN loop's data path vs the plain reference loop, same model, same run.

    python -m benchmarks.bench_training               # 100 timed steps per loop
    python -m benchmarks.bench_training --steps 300

Both loops train the same plain DCGAN (same architecture, BCE loss, Adam, batch 128, same maths):
- reference, as in pytorch/examples and most tutorials: torchvision's FashionMNIST dataset with
  ToTensor + Normalize, one PIL image per sample, collated by a DataLoader, and the tutorial's step,
  whose generator update also computes the discriminator's (unused) weight gradients;
- ours (training/train_gan.py): the whole uint8 training set in memory, one index per batch and a
  single vectorised conversion to [-1, 1], channels-last weights, and `gan_step`, which freezes D for
  the generator update.
Prints images per second for each and the ratio (target >= 1.2x).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from genmodels.data import DEBIAN_DIR, batches, load_fashion_mnist, to_tensor
from genmodels.dcgan import DCGANConfig, Discriminator, Generator
from training.common import MEMORY_FORMAT
from training.train_gan import Players, discriminator_loss, gan_step, generator_loss

BATCH = 128


def make_players() -> tuple[Players, int]:
    """A fresh plain DCGAN pair (seeded) and its optimisers, as the recipe sets them up."""
    torch.manual_seed(0)
    config = DCGANConfig()
    generator, discriminator = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return Players(generator, discriminator, discriminator, opt_g, opt_d), config.latent_dim


def reference_step():
    """The tutorial step (pytorch/examples' dcgan): D on real and fake, then G through D, D's grads on."""
    players, latent_dim = make_players()
    generator, discriminator = players.generator, players.discriminator

    def step(real: torch.Tensor) -> None:
        fake = generator(torch.randn(len(real), latent_dim))
        loss_d = discriminator_loss("bce", discriminator(real), discriminator(fake.detach()))
        players.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        players.opt_d.step()
        loss_g = generator_loss("bce", discriminator(fake))
        players.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        players.opt_g.step()

    return step


def our_step():
    """training/train_gan.py's step: gan_step, whose generator update skips D's unused gradients, on
    networks in the training script's memory format (channels-last)."""
    players, latent_dim = make_players()
    for module in (players.generator, players.discriminator):
        module.to(memory_format=MEMORY_FORMAT)
    return lambda real: gan_step(players, real, torch.randn(len(real), latent_dim))


def torchvision_root() -> Path:
    """A temporary folder laid out as torchvision's FashionMNIST expects (raw, uncompressed files)."""
    root = Path(tempfile.mkdtemp(prefix="fmnist-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        with gzip.open(DEBIAN_DIR / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def time_loop(batch_iter, step, steps: int, warmup: int = 5) -> float:
    """Images per second over `steps` steps after `warmup`, data loading included."""
    iterator = iter(batch_iter)
    for _ in range(warmup):
        step(next(iterator))
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    return steps * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per loop")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference loop")
    args = parser.parse_args()

    # Reference: torchvision dataset, per-sample PIL -> tensor transforms, DataLoader collation.
    root = torchvision_root()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.FashionMNIST(str(root), train=True, transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=args.workers, drop_last=True)
    reference = time_loop((images for images, _ in loader), reference_step(), args.steps)
    shutil.rmtree(root)

    # Ours: uint8 in memory, one vectorised conversion per batch.
    train = load_fashion_mnist("train").images
    order = batches(len(train), BATCH, torch.Generator().manual_seed(0))
    ours = time_loop((to_tensor(train[index]) for index in order), our_step(), args.steps)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps of batch {BATCH}\n")
    print("| loop | images / s |\n|---|---|")
    print(f"| reference (torchvision dataset + DataLoader, {args.workers} workers) | {reference:.0f} |")
    print(f"| ours (in-memory uint8 batches) | {ours:.0f} |")
    print(f"| ratio | {ours / reference:.2f}x |")


if __name__ == "__main__":
    main()
