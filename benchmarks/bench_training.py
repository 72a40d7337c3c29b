"""Training throughput: our GAN loop's data path vs the plain reference loop, same model, same run.

    python -m benchmarks.bench_training               # 100 timed steps per loop
    python -m benchmarks.bench_training --steps 300

Both loops run the identical DCGAN step (G and D, BCE loss, batch 128). They differ only in how a
batch reaches the step:
- reference, as in pytorch/examples and most tutorials: torchvision's FashionMNIST dataset with
  ToTensor + Normalize, one PIL image per sample, collated by a DataLoader;
- ours (training/train_gan.py): the whole uint8 training set in memory, one index per batch and a
  single vectorised conversion to [-1, 1].
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
from training.train_gan import discriminator_loss, generator_loss

BATCH = 128


def make_step():
    """A fresh DCGAN pair and its optimisers; returns step(real) -> None."""
    torch.manual_seed(0)
    config = DCGANConfig()
    generator, discriminator = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real: torch.Tensor) -> None:
        fake = generator(torch.randn(len(real), config.latent_dim))
        loss_d = discriminator_loss("bce", discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss("bce", discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step


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
    reference = time_loop((images for images, _ in loader), make_step(), args.steps)
    shutil.rmtree(root)

    # Ours: uint8 in memory, one vectorised conversion per batch.
    train = load_fashion_mnist("train").images
    order = batches(len(train), BATCH, torch.Generator().manual_seed(0))
    ours = time_loop((to_tensor(train[index]) for index in order), make_step(), args.steps)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps of batch {BATCH}\n")
    print("| loop | images / s |\n|---|---|")
    print(f"| reference (torchvision dataset + DataLoader, {args.workers} workers) | {reference:.0f} |")
    print(f"| ours (in-memory uint8 batches) | {ours:.0f} |")
    print(f"| ratio | {ours / reference:.2f}x |")


if __name__ == "__main__":
    main()
