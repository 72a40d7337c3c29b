"""The flow model's sampling settings: FIDc, recall and class match against ODE steps and guidance.

    python -m benchmarks.bench_flow                                # 2,000 samples per setting
    python -m benchmarks.bench_flow --num 10000 --steps 4 8 16 32 --guidance 1.5
    python -m benchmarks.bench_flow --below 0.3 0.4 0.5 1          # guidance only where t <= below
    python -m benchmarks.bench_flow --autoguidance 1 2 --autoguidance-below 0.4 1   # the guide network's weight
    python -m benchmarks.bench_flow --checkpoint runs/flow/checkpoint

Every setting draws the same class-conditional set (seed i, class i mod 10) and is scored like
`python -m genmodels evaluate` (our classifier's features, the 10,000 test images as reference), next
to the DCGAN at the same number of samples: FID falls as the number of samples grows, so only sets
of the same size compare. Also the backend time for 16 images (one request's worth) per setting, on
the threads torch has here (`--threads 1`: as the app computes each request). The default steps,
guidance, guidance interval and autoguidance (weight and interval) in the flow's config.json ("sampling") come from this
table: each list varies one setting with the others at the config's values.
"""

from __future__ import annotations

import argparse
import time

import torch

from genmodels.data import load_fashion_mnist, to_tensor
from genmodels.evaluate import generate_set, score
from genmodels.metrics import classifier_outputs, kth_neighbour_distance
from genmodels.registry import MODELS, load_model


def time_16(model: torch.nn.Module, repeats: int = 3, **settings) -> float:
    """Median seconds for 16 images of one class at `settings`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.sample(16, seed=0, label=7, **settings)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="samples per setting")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 6, 8, 12, 16], help="ODE steps to try")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 1.5, 2.0], help="guidance weights to try")
    parser.add_argument("--below", type=float, nargs="+", default=[], help="guidance intervals t <= below to try")
    parser.add_argument(
        "--autoguidance", type=float, nargs="+", default=[], help="autoguidance weights to try (1 = off)"
    )
    parser.add_argument(
        "--autoguidance-below", type=float, nargs="+", default=[], help="autoguidance intervals t <= below to try"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the timing (default: all)")
    parser.add_argument("--checkpoint", default=None, help="flow checkpoint folder (default: the bundled one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    classifier = load_model("classifier", args.device)
    reference, _ = classifier_outputs(classifier, to_tensor(load_fashion_mnist("test").images))
    radii = kth_neighbour_distance(reference)
    flow = load_model("flow", args.device, args.checkpoint)
    own = flow.sampling  # the checkpoint's settings; each row is the same weights with one changed
    defaults = (own.steps, own.guidance, own.guidance_below, own.autoguidance, own.autoguidance_below)
    guide = "no guide network" if flow.guide is None else f"autoguidance {defaults[3]:g} at t <= {defaults[4]:g}"
    print(
        f"{args.num} samples per row; flow defaults: {defaults[0]} steps, guidance {defaults[1]:g} at "
        f"t <= {defaults[2]:g}, {guide}\n"
    )
    print(
        "| model | steps | guidance | at t <= | autoguidance | at t <= | FIDc ↓ | recall ↑ | precision ↑ "
        "| class match | worst class | 16 images (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    dcgan = load_model("dcgan", args.device)
    images, _ = generate_set(dcgan, args.num, MODELS["dcgan"].conditional)
    row = score(classifier, reference, images, reference_radii=radii)
    print(f"| dcgan | | | | | | {row['fidc']:.2f} | {row['recall']:.3f} | {row['precision']:.3f} | | | |", flush=True)

    lists = [args.steps, args.guidance, args.below, args.autoguidance, args.autoguidance_below]
    settings = [tuple(defaults)] + [
        (*defaults[:index], value, *defaults[index + 1 :])
        for index, values in enumerate(lists)
        for value in values
        if value != defaults[index]
    ]
    threads = torch.get_num_threads()
    for steps, guidance, below, autoguidance, autoguidance_below in settings:
        tried = flow.with_sampling(
            guidance_below=below, autoguidance=autoguidance, autoguidance_below=autoguidance_below
        )
        images, labels = generate_set(tried, args.num, True, steps=steps, guidance=guidance)
        row = score(classifier, reference, images, labels, radii)
        torch.set_num_threads(args.threads or threads)
        seconds = time_16(tried, steps=steps, guidance=guidance)
        torch.set_num_threads(threads)
        print(
            f"| flow | {steps} | {guidance:g} | {below:g} | {autoguidance:g} | {autoguidance_below:g} | "
            f"{row['fidc']:.2f} | {row['recall']:.3f} | {row['precision']:.3f} | {row['class_match']:.1%} | "
            f"{row['class_match_min']:.1%} | {seconds:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
