"""Training throughput with 1 and with N processes (torchrun, DistributedDataParallel), same machine, one run.

    python -m benchmarks.bench_distributed                        # train_gan, 1 vs 2 processes on the CPU
    python -m benchmarks.bench_distributed --script train_vae --subset 25600 --processes 1 2

Each configuration trains one epoch over the first `--subset` training images from scratch (the real
script, through `torchrun` when N > 1) and reports images per second from the wall time the script
logs. One process uses torch's default threads (all cores); torchrun gives each of N processes
OMP_NUM_THREADS=1, so on a 2-core machine both use the same cores. `--batch-size` is per process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def train_once(script: str, processes: int, subset: int, batch_size: int, device: str) -> float:
    """Images per second of one epoch over `subset` images with `processes` processes."""
    with tempfile.TemporaryDirectory() as out:
        flags = ["--epochs", "1", "--subset", str(subset), "--batch-size", str(batch_size), "--out", out]
        flags += ["--device", device]
        if processes == 1:
            command = [sys.executable, "-m", f"training.{script}", *flags]
        else:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
            command = [*launcher, "-m", f"training.{script}", *flags]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
        line = json.loads((Path(out) / "metrics.jsonl").read_text().splitlines()[-1])
        return subset / line["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default="train_gan", choices=("train_gan", "train_vae", "train_classifier"))
    parser.add_argument("--subset", type=int, default=19_200, help="training images in the epoch")
    parser.add_argument("--batch-size", type=int, default=128, help="per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()

    results = {n: train_once(args.script, n, args.subset, args.batch_size, args.device) for n in args.processes}
    print(f"torch {torch.__version__}, {args.script}, one epoch of {args.subset} images, batch {args.batch_size}")
    print(f"per process, device {args.device}\n")
    print("| processes | images / s | vs 1 process |\n|---|---|---|")
    base = results.get(1)
    for n, rate in results.items():
        print(f"| {n} | {rate:.0f} | {rate / base:.2f}x |" if base else f"| {n} | {rate:.0f} | |")


if __name__ == "__main__":
    main()
