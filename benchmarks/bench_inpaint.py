"""Masked regeneration: the flow model's RePaint against the GANs' and the VAE's latent fitting.

    python -m benchmarks.bench_inpaint                     # 50 test images, two masks, every model
    python -m benchmarks.bench_inpaint --num 20 --models flow dcgan

Each held-out test image loses a region (the centre 12x12 square, or the right half), and each model
redraws it through `Lab.inpaint`, one image per call as the app does: the GANs and the VAE fit a
latent to the kept pixels (gradient descent from seeded starts; the VAE starts from its encoder),
flow samples the region around them (RePaint). Per row, medians over the images: the time per
image, the PSNR of the kept pixels of the result (the user's pixels: exact is shown as 100 dB), the
PSNR of the model's own full image on those kept pixels (how well the redrawn part fits what
surrounds it), the PSNR of the redrawn region to the original (one plausible answer among many, so
only a rough guide), and the share of results the classifier puts in the original's class. Flow
also in variants of its steps and resampling (`--flow-settings STEPS:RESAMPLE ...`), and cGAN and
flow with the original class given.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from genmodels.data import load_fashion_mnist, to_tensor
from genmodels.flow import INPAINT_RESAMPLE, INPAINT_STEPS
from genmodels.lab import Lab
from genmodels.metrics import MAX_PSNR
from genmodels.registry import MODELS
from genmodels.studio import masked_psnr


def masks() -> dict[str, np.ndarray]:
    """Regions to redraw (28, 28) bool."""
    centre = np.zeros((28, 28), bool)
    centre[8:20, 8:20] = True
    right = np.zeros((28, 28), bool)
    right[:, 14:] = True
    return {"centre 12x12": centre, "right half": right}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=50, help="test images per mask (from index 5,000 on)")
    parser.add_argument("--models", nargs="+", default=["flow", "dcgan", "cgan", "vae"])
    parser.add_argument("--flow-settings", nargs="*", default=["6:2", "12:0", "24:2"], help="STEPS:RESAMPLE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as the app computes a request)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    lab = Lab("cpu")
    classifier = lab.model("classifier", generative=False)
    test = load_fashion_mnist("test")
    images, labels = test.images[5000 : 5000 + args.num].numpy(), test.labels[5000 : 5000 + args.num]
    print(f"{args.num} test images per mask, {args.threads} thread(s); medians per image\n")
    print(
        "| region | model | settings | s per image | kept pixels (dB) | model's image on kept (dB) | region vs original (dB) | class kept |"
    )
    print("|---|---|---|---|---|---|---|---|")

    rows = []
    for model in args.models:
        if MODELS[model].denoises:
            rows.append((model, "any", INPAINT_STEPS, INPAINT_RESAMPLE, "defaults, any class"))
            rows.append((model, "given", INPAINT_STEPS, INPAINT_RESAMPLE, "defaults, class given"))
            for setting in args.flow_settings:
                steps, resample = (int(part) for part in setting.split(":"))
                rows.append((model, "any", steps, resample, f"{steps} steps, resample {resample}"))
        else:
            rows.append(
                (
                    model,
                    "given" if MODELS[model].conditional else None,
                    None,
                    None,
                    "class given" if MODELS[model].conditional else "",
                )
            )

    for region, regenerate in masks().items():
        keep = torch.from_numpy(~regenerate)[None].float()
        for model, label_mode, steps, resample, description in rows:
            flow_settings = {} if steps is None else {"steps": steps, "resample": resample}
            times, kept, fit, region_psnr, results = [], [], [], [], []
            for image, label in zip(images, labels.tolist()):
                given = label if label_mode == "given" else None  # (None: any class)
                started = time.perf_counter()
                blended, _, result = lab.inpaint(
                    model, image, regenerate, 0 if given is None else given, **flow_settings
                )
                times.append(time.perf_counter() - started)
                original, result_tensor = to_tensor(image)[0], to_tensor(blended)[0]
                kept.append(masked_psnr(result_tensor, original, keep))
                fit.append(masked_psnr(result.image.cpu().float(), original, keep))
                region_psnr.append(masked_psnr(result_tensor, original, 1 - keep))
                results.append(blended)
            with torch.inference_mode():
                predicted = classifier(to_tensor(np.stack(results))).argmax(1)
            class_kept = (predicted == labels).float().mean().item()
            print(
                f"| {region} | {model} | {description} | {statistics.median(times):.2f} | "
                f"{min(statistics.median(kept), MAX_PSNR):.1f} | {statistics.median(fit):.1f} | "
                f"{statistics.median(region_psnr):.1f} | {class_kept:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
