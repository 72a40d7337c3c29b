"""What an upload of a Fashion-MNIST test image becomes before the models see it.

For held-out test images uploaded as PNG files at 28 px, as a 4x nearest-neighbour enlargement and as
a 4x bicubic enlargement: the PSNR of the prepared 28x28 image to the original (median and worst, and
how many are identical), with the app's automatic preparation and, for comparison, with the full
photo-and-drawing steps every upload got before.

    python -m benchmarks.bench_preprocess [--num 1000]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from genmodels.data import load_fashion_mnist
from genmodels.preprocess import prepare_upload

UPLOADS = {
    "28 px": lambda image: image,
    "4x nearest": lambda image: np.asarray(Image.fromarray(image).resize((112, 112), Image.NEAREST)),
    "4x bicubic": lambda image: np.asarray(Image.fromarray(image).resize((112, 112), Image.BICUBIC)),
}


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB on [0, 255] pixels; identical images count as infinite."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=1000, help="test images, spread evenly over the 10,000")
    args = parser.parse_args()
    test = load_fashion_mnist("test")
    indices = np.linspace(0, len(test) - 1, args.num).round().astype(int)
    print(f"{args.num} Fashion-MNIST test images, PSNR of the prepared 28x28 image to the original (dB)\n")
    print("| upload | preparation | median | worst | identical |")
    print("|---|---|---|---|---|")
    for name, make in UPLOADS.items():
        for preparation in ("auto", "full"):
            values = []
            for index in indices:
                original = test.images[index].numpy()
                prepared = prepare_upload(png(make(original)), preparation).image
                values.append(psnr_db(prepared, original))
            values = np.array(values)
            identical = np.isinf(values).mean()
            print(
                f"| {name} | {preparation} | {np.median(values):.1f} | {values.min():.1f} | {identical:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
