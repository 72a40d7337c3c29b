"""One script for a machine with a GPU: does the GPU path work, agree with the CPU, and how fast is it?

    python -m benchmarks.gpu_check                    # on the GPU machine, from the repository root
    python -m benchmarks.gpu_check --device cpu       # the same checks on the CPU (to test the script)

1. Same seed -> same pixels: every generative model's 16 images from seed 0 on the CPU and on the
   device, compared as uint8 pixels (TF32 is off; differences can only come from float rounding).
2. Generation latency on the device, 1 and 64 images per model (median of 50, synchronised).
3. Training: `train_gan` for 200 steps of 128 images (one epoch over 25,600 images) with fp32, with
   bf16 autocast, and with bf16 plus `--compile`; images per second and the last losses. On a GPU
   all three also use channels-last, the data set resident on the device and non-blocking copies.
Prints Markdown; with $OUT set, also writes gpu_check.json there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from genmodels.data import to_uint8
from genmodels.device import resolve_device
from genmodels.registry import generative_names, load_model

ROOT = Path(__file__).resolve().parent.parent


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def same_pixels(device: torch.device) -> dict[str, dict[str, float]]:
    """Per model: share of identical uint8 pixels and the largest difference, CPU vs `device`."""
    report = {}
    for name in generative_names():
        cpu = to_uint8(load_model(name, "cpu").sample(16, seed=0)).int()
        other = to_uint8(load_model(name, device).sample(16, seed=0).cpu()).int()
        difference = (cpu - other).abs()
        report[name] = {"identical": (difference == 0).double().mean().item(), "max_diff": difference.max().item()}
    return report


@torch.inference_mode()
def latency_ms(device: torch.device, calls: int = 50) -> dict[str, dict[int, float]]:
    """Per model: median milliseconds for 1 and 64 images on `device`."""
    report = {}
    for name in generative_names():
        model = load_model(name, device)
        report[name] = {}
        for num in (1, 64):
            for _ in range(5):
                model.sample(num, seed=0)
            times = []
            for _ in range(calls):
                synchronize(device)
                start = time.perf_counter()
                model.sample(num, seed=0)
                synchronize(device)
                times.append((time.perf_counter() - start) * 1000)
            report[name][num] = statistics.median(times)
    return report


def training(device: str, flags: list[str], subset: int = 25_600) -> dict[str, float]:
    """One epoch of train_gan over `subset` images with `flags`: images/s and the last losses."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "training.train_gan", "--epochs", "1", "--subset", str(subset)]
        command += ["--device", device, "--out", out, *flags]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            return {"error": result.stderr[-1500:]}
        line = json.loads((Path(out) / "metrics.jsonl").read_text().splitlines()[-1])
        return {
            "images_per_s": round(subset / line["wall_time_s"], 1),
            "loss_d": line["loss_d"],
            "loss_g": line["loss_g"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "mps"))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)

    report: dict = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
        report["bf16_supported"] = torch.cuda.is_bf16_supported()
    report["same_pixels"] = same_pixels(device)
    report["latency_ms"] = latency_ms(device)
    if not args.skip_training:
        report["training"] = {
            "fp32": training(args.device, ["--precision", "fp32"]),
            "bf16": training(args.device, ["--precision", "bf16"]),
            "bf16 + compile": training(args.device, ["--precision", "bf16", "--compile"]),
        }

    print(f"torch {report['torch']} on {report.get('gpu', report['device'])}\n")
    print("| model | identical pixels CPU vs device | max difference | 1 image ms | 64 images ms |")
    print("|---|---|---|---|---|")
    for name, pixels in report["same_pixels"].items():
        latency = report["latency_ms"][name]
        print(f"| {name} | {pixels['identical']:.4%} | {pixels['max_diff']} | {latency[1]:.2f} | {latency[64]:.2f} |")
    for label, result in report.get("training", {}).items():
        print(f"\ntrain_gan, {label}: {json.dumps(result)}")
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
