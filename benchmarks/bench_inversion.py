"""Inversion quality and speed: 100 test images (never trained on) into each model's latent space.

    python -m benchmarks.bench_inversion               # 100 test images, every generative model
    python -m benchmarks.bench_inversion --num 20 --models flow vae

The VAE inverts by its encoder; the GANs by optimisation (genmodels.studio.invert: Adam from 16
seeded starts, 150 steps), the cGAN with the image's true class; flow by its ODE run backwards at the
checkpoint's default steps, with the true class. Prints mean, median and worst PSNR (dB, pixels in
[0, 1]) and seconds per image. Targets: GAN inversion at least 18 dB in under 2 s; flow a median of
at least 28 dB in under 1 s.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from genmodels.data import load_fashion_mnist
from genmodels.lab import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=100, help="test images (the first NUM of the test set)")
    parser.add_argument("--models", nargs="+", default=None, help="generative models to invert (default: all)")
    args = parser.parse_args()

    lab = Lab("cpu")
    test = load_fashion_mnist("test")
    images, labels = test.images[: args.num].numpy(), test.labels[: args.num].tolist()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.num} test images\n")
    print("| model | mean PSNR dB | median | worst | s / image (mean) | s / image (max) |")
    print("|---|---|---|---|---|---|")
    for model in args.models or lab.generative():
        results = [lab.invert(model, image, label=label) for image, label in zip(images, labels)]
        psnrs, seconds = [r.psnr for r in results], [r.seconds for r in results]
        print(
            f"| {model} | {statistics.mean(psnrs):.2f} | {statistics.median(psnrs):.2f} | {min(psnrs):.2f} | "
            f"{statistics.mean(seconds):.3f} | {max(seconds):.3f} |"
        )


if __name__ == "__main__":
    main()
