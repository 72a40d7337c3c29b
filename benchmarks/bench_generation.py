"""Backend generation latency per model, for 1 and 64 images (seeds to latents to pixels, no server).

    python -m benchmarks.bench_generation
    python -m benchmarks.bench_generation --calls 200 --device cuda

Prints a Markdown table of median and 95th-percentile milliseconds per call.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from genmodels.device import DEVICE_CHOICES, resolve_device
from genmodels.lab import Lab


def p95(values: list[float]) -> float:
    """95th percentile (inclusive method: within the observed range)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="timed calls per model and batch size")
    parser.add_argument("--device", default="cpu", choices=DEVICE_CHOICES, help="where the models run")
    args = parser.parse_args()

    lab = Lab(args.device)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {args.calls} calls\n")
    print("| model | images | median ms | p95 ms |\n|---|---|---|---|")
    for name in lab.generative():
        for num in (1, 64):
            for _ in range(5):  # warm-up
                lab.generate(name, 0, num)
            times = []
            for call in range(args.calls):
                start = time.perf_counter()
                lab.generate(name, call, num)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - start) * 1000)
            print(f"| {name} | {num} | {statistics.median(times):.2f} | {p95(times):.2f} |")


if __name__ == "__main__":
    main()
