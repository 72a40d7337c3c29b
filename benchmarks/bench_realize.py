"""Realize (SDEdit with the flow model) against the VAE projection, on crude versions of test images.

    python -m benchmarks.bench_realize                       # 1,000 test images, strengths 0.3-0.7
    python -m benchmarks.bench_realize --num 2000 --strengths 0.4 0.5 0.6

The crude inputs are what a user brings to the Edit and Round trip tabs: test images blurred
(Gaussian, sigma 1.5), rotated by 30 degrees, and "sketched" (only the outline of the garment's
silhouette, as strokes). Each set goes through the VAE (encode, decode: the projection the app
offered before) and through `FlowModel.realize` at several strengths, with no class given (the model decides) and with
the original image's class given (as a user who says what they drew). Per row:
FIDc of the set against the 10,000 test images (realism; our classifier's features, as in
`python -m genmodels evaluate`), how many the classifier puts in the original image's class (the
input's class kept), the PSNR to the crude input (faithfulness), and the backend time per image.
FIDc over 1,000 images is higher than over 10,000 for every row alike: compare rows, not with the
README's table.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from genmodels.data import load_fashion_mnist, to_tensor
from genmodels.evaluate import score
from genmodels.latent import seed_to_z
from genmodels.metrics import classifier_outputs, kth_neighbour_distance, psnr
from genmodels.registry import load_model


def blurred(x: torch.Tensor) -> torch.Tensor:
    return TF.gaussian_blur(x, kernel_size=7, sigma=1.5)


def rotated(x: torch.Tensor) -> torch.Tensor:
    return TF.rotate(x, 30.0, interpolation=TF.InterpolationMode.BILINEAR, fill=-1.0)


def sketched(x: torch.Tensor) -> torch.Tensor:
    """The outline of the silhouette (pixels brighter than the background), two pixels wide, white on black."""
    silhouette = (x > -0.8).float()
    dilated = F.max_pool2d(silhouette, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-silhouette, 3, stride=1, padding=1)
    return (dilated - eroded) * 2 - 1


CRUDE = {"blurred": blurred, "rotated": rotated, "sketched": sketched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=1000, help="test images per crude set")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--steps", type=int, default=None, help="ODE steps over the whole path (default: the flow's)")
    parser.add_argument("--kinds", nargs="+", default=list(CRUDE), choices=list(CRUDE))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    classifier = load_model("classifier", args.device)
    test = load_fashion_mnist("test")
    reference, _ = classifier_outputs(classifier, to_tensor(test.images))
    radii = kth_neighbour_distance(reference)
    vae, flow = load_model("vae", args.device), load_model("flow", args.device)
    images, labels = to_tensor(test.images[: args.num]), test.labels[: args.num]
    noise = seed_to_z(0, args.num, flow.latent_dim)
    steps = args.steps or flow.sampling.steps
    print(f"{args.num} test images per set; flow: {steps} steps over the whole path\n")
    print("| input | method | strength | FIDc ↓ | input's class kept ↑ | PSNR to input (dB) | ms per image |")
    print("|---|---|---|---|---|---|---|")

    def report(kind: str, method: str, strength: str, out: torch.Tensor, crude: torch.Tensor, seconds: float):
        row = score(classifier, reference, out.to(args.device), labels, radii)
        closeness = psnr(out.cpu(), crude.cpu()).mean().item()
        print(
            f"| {kind} | {method} | {strength} | {row['fidc']:.2f} | {row['class_match']:.1%} | {closeness:.1f} | "
            f"{1000 * seconds / len(out):.1f} |",
            flush=True,
        )

    for kind in args.kinds:
        crude = CRUDE[kind](images).clamp(-1, 1)
        report(kind, "as it is", "", crude, crude, 0.0)
        started = time.perf_counter()
        with torch.inference_mode():
            projected = torch.cat([vae.reconstruct(part.to(args.device)) for part in crude.split(500)])
        report(kind, "VAE projection", "", projected, crude, time.perf_counter() - started)
        for strength in args.strengths:
            for given in (False, True):
                started = time.perf_counter()
                realized = torch.cat(
                    [
                        flow.realize(part.to(args.device), strength, z, label=y if given else None, steps=steps)
                        for part, z, y in zip(crude.split(500), noise.split(500), labels.split(500))
                    ]
                )
                method = "flow realize, class given" if given else "flow realize"
                report(kind, method, f"{strength:g}", realized, crude, time.perf_counter() - started)


if __name__ == "__main__":
    main()
