"""The flow model's sampling settings: FIDc, recall and class match against ODE steps and guidance.

    python -m benchmarks.bench_flow                                # 2,000 samples per setting
    python -m benchmarks.bench_flow --num 10000 --steps 4 8 16 32 --guidance 1.5
    python -m benchmarks.bench_flow --below 0.3 0.4 0.5 1          # guidance only where t <= below
    python -m benchmarks.bench_flow --checkpoint runs/flow/checkpoint

Every setting draws the same class-conditional set (seed i, class i mod 10) and is scored like
`python -m genmodels evaluate` (our classifier's features, the 10,000 test images as reference), next
to the DCGAN at the same number of samples: FID falls as the number of samples grows, so only sets
of the same size compare. Also the backend time for 16 images (one request's worth) per setting, on
the threads torch has here (`--threads 1`: as the app computes each request). The default steps,
guidance and guidance interval in the flow's config come from this table: each list varies one
setting with the others at the config's values.
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
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the timing (default: all)")
    parser.add_argument("--checkpoint", default=None, help="flow checkpoint folder (default: the bundled one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    classifier = load_model("classifier", args.device)
    reference, _ = classifier_outputs(classifier, to_tensor(load_fashion_mnist("test").images))
    radii = kth_neighbour_distance(reference)
    flow = load_model("flow", args.device, args.checkpoint)
    config = flow.config
    defaults = (config.steps, config.guidance, config.guidance_below)
    print(
        f"{args.num} samples per row; flow defaults: {defaults[0]} steps, guidance {defaults[1]:g} at t <= {defaults[2]:g}\n"
    )
    print(
        "| model | steps | guidance | at t <= | FIDc ↓ | recall ↑ | precision ↑ | class match | worst class | 16 images (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    dcgan = load_model("dcgan", args.device)
    images, _ = generate_set(dcgan, args.num, MODELS["dcgan"].conditional)
    row = score(classifier, reference, images, reference_radii=radii)
    print(f"| dcgan | | | | {row['fidc']:.2f} | {row['recall']:.3f} | {row['precision']:.3f} | | | |", flush=True)

    settings = [(steps, defaults[1], defaults[2]) for steps in args.steps]
    settings += [(defaults[0], guidance, defaults[2]) for guidance in args.guidance if guidance != defaults[1]]
    settings += [(defaults[0], defaults[1], below) for below in args.below if below != defaults[2]]
    threads = torch.get_num_threads()
    for steps, guidance, below in settings:
        config.guidance_below = below
        images, labels = generate_set(flow, args.num, True, steps=steps, guidance=guidance)
        row = score(classifier, reference, images, labels, radii)
        torch.set_num_threads(args.threads or threads)
        seconds = time_16(flow, steps=steps, guidance=guidance)
        torch.set_num_threads(threads)
        print(
            f"| flow | {steps} | {guidance:g} | {below:g} | {row['fidc']:.2f} | {row['recall']:.3f} | "
            f"{row['precision']:.3f} | {row['class_match']:.1%} | {row['class_match_min']:.1%} | {seconds:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
