"""Inversion quality and speed: test images (never trained on) into each model's latent space, in
the backend and through the app's /invert as a user calls it.

    python -m benchmarks.bench_inversion               # 100 test images, every generative model, backend
    python -m benchmarks.bench_inversion --num 20 --models flow vae
    python -m benchmarks.bench_inversion --app --models dcgan   # also through /invert on an idle server
    python -m benchmarks.bench_inversion --app --models flow cgan --no-label   # the endpoint's default class

The VAE inverts by its encoder; each GAN from its trained encoder's guess refined by L-BFGS
(genmodels.studio.inversion_steps; the iterations are the registry's, per encoder), the cGAN with the
image's true class (the class a user picks on the page); flow by its ODE run backwards at the
checkpoint's default steps, with the true class. Prints mean, median and worst PSNR (dB, pixels in
[0, 1]) and seconds per image.

With --app the same images go, one at a time as 28x28 PNG files, to /invert of a server started as
the README says (`python app.py`, its own process, waited on until idle), through gradio_client; the
PSNR is computed here from the two pictures it returns (the prepared image and the reconstruction,
both uint8), the time is the client's whole call. With --no-label the class is left out, as a newcomer
leaves it: the endpoint's default, "any class" (flow without a class; the cGAN the classifier's guess),
and "any class" in the backend. Targets: GAN inversion under 0.5 s through
/invert with a median of at least 22 dB; flow a median of at least 28 dB in under 1 s.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gradio_client import handle_file
from PIL import Image

from benchmarks.bench_load import free_port, local_client, p95, start_server, wait_idle
from genmodels.data import CLASS_NAMES, load_fashion_mnist


def uint8_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, pixels scaled to [0, 1]."""
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    return float(10 * np.log10(1 / max(mse, 1e-10)))


def gray(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def through_app(
    models: list[str], images: np.ndarray, labels: list[int], no_label: bool = False
) -> dict[str, tuple[list, list]]:
    """{model: (PSNRs, seconds)} of /invert calls on a fresh, idle `python app.py` server, and the
    computing time the server states in its answer for each ("MODEL (computing, in the server)")."""
    folder = Path(tempfile.mkdtemp())
    files = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"test_{i:05d}.png")
        files.append(handle_file(str(folder / f"test_{i:05d}.png")))
    port = free_port()
    server = start_server(port)
    try:
        wait_idle(server.pid)
        client = local_client(f"http://127.0.0.1:{port}/", download=True)
        results = {}
        for model in models:
            psnrs, seconds, computed = [], [], []
            for warmup in files[:2]:
                client.predict(image=warmup, model=model, label=CLASS_NAMES[labels[0]], api_name="/invert")
            for file, label in zip(files, labels):
                started = time.perf_counter()
                given = {} if no_label else {"label": CLASS_NAMES[label]}
                (before, after), info = client.predict(image=file, model=model, **given, api_name="/invert")
                seconds.append(time.perf_counter() - started)
                psnrs.append(uint8_psnr(gray(before), gray(after)))
                computed.append(float(re.search(r"in ([\d.]+) s\.", info)[1]))  # as the server timed it
            results[model] = (psnrs, seconds)
            results[f"{model} (computing, in the server)"] = (psnrs, computed)
        return results
    finally:
        server.kill()


def row(model: str, where: str, psnrs: list[float], seconds: list[float]) -> str:
    return (
        f"| {model} | {where} | {statistics.mean(psnrs):.2f} | {statistics.median(psnrs):.2f} | {min(psnrs):.2f} | "
        f"{statistics.median(seconds):.3f} | {p95(seconds):.3f} | {max(seconds):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=100, help="test images (the first NUM of the test set)")
    parser.add_argument("--models", nargs="+", default=None, help="generative models to invert (default: all)")
    parser.add_argument("--app", action="store_true", help="also through /invert on a server (`python app.py`)")
    parser.add_argument("--no-label", action="store_true", help="leave the class out: the endpoint's default")
    args = parser.parse_args()

    test = load_fashion_mnist("test")
    images, labels = test.images[: args.num].numpy(), test.labels[: args.num].tolist()
    lines = []
    if args.app:  # first, while this process holds no models and computes nothing
        for model, (psnrs, seconds) in through_app(
            args.models or ["dcgan", "vae", "cgan", "flow"], images, labels, args.no_label
        ).items():
            lines.append(row(model, "/invert", psnrs, seconds))

    from genmodels.lab import Lab

    lab = Lab("cpu")
    for model in args.models or lab.generative():
        given = (
            [lab.guess_class(image) if model == "cgan" else None for image in images]  # None: any class
            if args.no_label
            else labels
        )
        results = [lab.invert(model, image, label=label) for image, label in zip(images, given)]
        lines.append(row(model, "backend", [r.psnr for r in results], [r.seconds for r in results]))
    classes = "the endpoint's default class" if args.no_label else "the true class"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads here, {args.num} test images, {classes}\n")
    print("| model | where | mean PSNR dB | median | worst | s / image (median) | p95 | max |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(sorted(lines, key=lambda line: line.split("|")[1])))


if __name__ == "__main__":
    main()
