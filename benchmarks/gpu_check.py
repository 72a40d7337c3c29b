"""One script for a machine with a GPU: does the GPU path work, agree with the CPU, and how fast is it?

    python -m benchmarks.gpu_check                    # on the GPU machine, from the repository root
    python -m benchmarks.gpu_check --device cpu       # the same checks on the CPU (to test the script)

1. Same seed -> same pixels: every generative model's 16 images from seed 0 on the CPU and on the
   device, compared as uint8 pixels (TF32 is off; differences can only come from float rounding).
2. Generation latency on the device, 1 and 64 images per model (median of 50, synchronised).
3. The app's actions on the device: every `genmodels.lab.Lab` action the app calls (batched generation,
   round trip, interpolation, edits, inversion, latent moves, keyframes) on the CPU and on the device,
   compared as uint8 pixels, with the device's median time per call.
4. Training: `train_gan` for two epochs of 400 steps of 128 images (51,200 images) with fp32 and with
   bf16 autocast, each without and with `--compile`; images per second in the first epoch (warm-up
   and compilation included) and in the second, and the last losses. On a GPU all runs keep the data
   set resident on the device and use non-blocking copies; the uncompiled ones use channels-last.
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
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genmodels.data import to_uint8
from genmodels.device import resolve_device
from genmodels.editing import EditParams
from genmodels.registry import generative_names, load_model

ROOT = Path(__file__).resolve().parent.parent


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(device: torch.device, call, calls: int, warmup: int = 0) -> float:
    """Median wall-clock milliseconds of `call()` on `device`, synchronised, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def agreement(cpu: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Share of identical uint8 pixels and the largest difference between two sets of images."""
    difference = (cpu.int() - other.int()).abs()
    return {"identical": (difference == 0).double().mean().item(), "max_diff": difference.max().item()}


def same_pixels(device: torch.device) -> dict[str, dict[str, float]]:
    """Per model: share of identical uint8 pixels and the largest difference, CPU vs `device`."""
    report = {}
    for name in generative_names():
        cpu = to_uint8(load_model(name, "cpu").sample(16, seed=0))
        model = load_model(name, device)
        where = {tensor.device.type for tensor in model.state_dict().values()}
        if where != {device.type}:  # else "CPU vs device" would compare the CPU with itself
            raise RuntimeError(f"{name} was loaded for {device} but its weights are on {', '.join(sorted(where))}.")
        report[name] = agreement(cpu, to_uint8(model.sample(16, seed=0)))
    return report


@torch.inference_mode()
def latency_ms(device: torch.device, calls: int = 50) -> dict[str, dict[int, float]]:
    """Per model: median milliseconds for 1 and 64 images on `device`."""
    report = {}
    for name in generative_names():
        model = load_model(name, device)
        report[name] = {num: median_ms(device, partial(model.sample, num, seed=0), calls, warmup=5) for num in (1, 64)}
    return report


def as_pixels(result) -> torch.Tensor:
    """An action's result (images in [-1, 1], a uint8 array, an Inversion, a RoundTrip) as uint8 pixels."""
    if hasattr(result, "samples"):  # RoundTrip
        return torch.from_numpy(np.concatenate([result.reconstruction[None], result.samples]))
    if hasattr(result, "image"):  # Inversion
        result = result.image[None]
    if isinstance(result, np.ndarray):
        return torch.from_numpy(result)
    return to_uint8(result)


def lab_actions(device: torch.device, calls: int = 5) -> dict[str, dict]:
    """Per app action: share of identical pixels CPU vs `device`, largest difference, device median ms."""
    from genmodels.lab import Lab

    example = sorted((ROOT / "genmodels" / "examples").glob("*.png"))[0]
    image = np.array(Image.open(example).convert("L"))  # writable, as an upload is
    actions = {
        "generate dcgan x64": lambda lab: lab.generate("dcgan", 0, 64),
        "generate cgan x64, label 7": lambda lab: lab.generate("cgan", 0, 64, label=7),
        "generate vae x64": lambda lab: lab.generate("vae", 0, 64),
        "vae round trip": lambda lab: lab.roundtrip(image),
        "interpolate dcgan, 32 steps": lambda lab: lab.interpolate("dcgan", 0, 1, 32),
        "edit + vae projection": lambda lab: lab.edit(image, EditParams(angle=15.0, scale=0.9))[1],
        "invert dcgan": lambda lab: lab.invert("dcgan", image),
        "move vae (class, principal)": lambda lab: lab.decode(
            "vae", lab.move("vae", lab.latent("vae", 3), target="Trouser", amount=2.0, components=[1.0, -1.0])[None]
        ),
        "move dcgan (class, principal)": lambda lab: lab.decode(
            "dcgan", lab.move("dcgan", lab.latent("dcgan", 3), target="Bag", amount=2.0, components=[1.0, -1.0])[None]
        ),
        "keyframes dcgan, 3 x 8": lambda lab: lab.keyframes("dcgan", [0, 1, 2], steps=8),
    }
    labs = {"cpu": Lab("cpu"), "device": Lab(device)}
    report = {}
    for name, action in actions.items():
        try:
            # The first device call also computes what the lab keeps (directions), so it is not timed.
            report[name] = agreement(as_pixels(action(labs["cpu"])), as_pixels(action(labs["device"])))
            report[name]["ms"] = median_ms(device, partial(action, labs["device"]), calls)
        except Exception as exc:  # one broken action must not hide the others' results
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def training(device: str, flags: list[str], subset: int = 51_200) -> dict[str, float]:
    """Two epochs of train_gan over `subset` images with `flags`: images/s in each and the last losses.

    The first epoch holds the warm-up (and with --compile the compilation); the second is the steady pace.
    """
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "training.train_gan", "--epochs", "2", "--subset", str(subset)]
        command += ["--device", device, "--out", out, *flags]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            return {"error": result.stderr[-1500:]}
        first, second = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
        return {
            "epoch_1_images_per_s": round(subset / first["wall_time_s"], 1),
            "epoch_2_images_per_s": round(subset / (second["wall_time_s"] - first["wall_time_s"]), 1),
            "loss_d": second["loss_d"],
            "loss_g": second["loss_g"],
        }


def save(report: dict) -> None:
    """Write the report so far to $OUT/gpu_check.json (when $OUT is set): a run cut short keeps its results."""
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(json.dumps(report, indent=2))


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
    print(f"torch {report['torch']} on {report.get('gpu', report['device'])}\n", flush=True)

    report["same_pixels"] = same_pixels(device)
    report["latency_ms"] = latency_ms(device)
    save(report)
    print("| model | identical pixels CPU vs device | max difference | 1 image ms | 64 images ms |")
    print("|---|---|---|---|---|")
    for name, pixels in report["same_pixels"].items():
        latency = report["latency_ms"][name]
        print(f"| {name} | {pixels['identical']:.4%} | {pixels['max_diff']} | {latency[1]:.2f} | {latency[64]:.2f} |")

    report["lab"] = lab_actions(device)
    save(report)
    print("\n| app action | identical pixels CPU vs device | max difference | device ms |")
    print("|---|---|---|---|")
    for name, result in report["lab"].items():
        if "error" in result:
            print(f"| {name} | {result['error']} | | |")
        else:
            print(f"| {name} | {result['identical']:.4%} | {result['max_diff']} | {result['ms']:.1f} |")

    if args.skip_training:
        return
    report["training"] = {}
    for label, flags in (
        ("fp32", ["fp32"]),
        ("bf16", ["bf16"]),
        ("fp32 + compile", ["fp32", "--compile"]),
        ("bf16 + compile", ["bf16", "--compile"]),
    ):
        report["training"][label] = training(args.device, ["--precision", *flags])
        save(report)
        print(f"\ntrain_gan, {label}: {json.dumps(report['training'][label])}", flush=True)


if __name__ == "__main__":
    main()
