"""What the three training scripts share: flags, the run folder, logging, saving and pushing, and
running as several processes under torchrun with the GPU fast path.

A run folder (`--out`, default `runs/<family>`) holds
    checkpoint/            config.json + model.safetensors + README.md (loadable by from_pretrained)
    state.safetensors      everything `--resume` needs (weights, optimisers, RNG, counters)
    samples/epoch_NNN.png  a grid from fixed noise (generative models)
    metrics.jsonl          one JSON line per epoch

Several processes: `torchrun --nproc_per_node=N -m training.train_gan ...` runs the same script as N
processes (gloo on CPU, nccl on CUDA). Each model is wrapped in DistributedDataParallel, each process
trains on its own shard of every epoch (torch's DistributedSampler, reshuffled per epoch), `--batch-size`
is per process, and only rank 0 logs, writes grids and checkpoints and pushes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from torchvision.utils import save_image
from tqdm import tqdm

from genmodels.checkpoint import load_training_state, save_training_state
from genmodels.data import FashionMNIST, batches, load_fashion_mnist
from genmodels.device import DEVICE_CHOICES, resolve_device
from genmodels.hub import model_card, push_folder, save_atomic, write_atomic

DRY_RUN_IMAGES = 256  # training images used by --dry-run
DRY_RUN_MAX_EPOCHS = 2
DRY_RUN_BATCH = 32
# Convolution weights (and so activations) in channels-last layout, on GPUs and CPUs alike: oneDNN's
# CPU kernels are faster in it too (plain DCGAN step at batch 128, one thread: 245 vs 284 ms).
# Not with --compile, which chooses layouts itself (see Run.wrap).
MEMORY_FORMAT = torch.channels_last
EVAL_SAMPLES = 10_000  # samples scored into the model card when a run finishes
DRY_RUN_EVAL_SAMPLES = 200
WARMUP_STEPS = 200  # of the learning-rate schedule (`learning_rate`)
FINAL_LR_SHARE = 0.1  # the cosine schedule ends at this share of --lr


def make_parser(description: str, epochs: int, batch_size: int, lr: float, out: str) -> argparse.ArgumentParser:
    """The flags every training script has, with the script's own defaults."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=epochs, help="number of passes over the training set")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="images per optimisation step")
    parser.add_argument("--lr", type=float, default=lr, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and fixed noise")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where to train")
    parser.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", default=out, help="run folder for checkpoint, state, samples and metrics")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    parser.add_argument("--dry-run", action="store_true", help="a few steps on a small subset, in seconds")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload the checkpoint when done")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="bf16 autocast for the forward passes; auto = bf16 on a CUDA GPU that supports it, fp32 elsewhere",
    )
    parser.add_argument("--compile", action="store_true", help="compile the training forward passes (torch.compile)")
    parser.add_argument(
        "--subset", type=int, default=None, metavar="N", help="train on the first N training images only"
    )
    return parser


@dataclass(frozen=True)
class Distributed:
    """This process's place among the torchrun processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the process group torchrun set up (WORLD_SIZE > 1), on this process's own GPU if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank), device


@dataclass
class Run:
    """A training run's folder, counters and wall clock."""

    args: argparse.Namespace
    device: torch.device
    folder: Path
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps taken
    wall_time_s: float = 0.0  # training time summed over resumed sessions
    commands: list[str] = field(default_factory=list)  # the command line of each session of this run
    started: float = field(default_factory=time.perf_counter)
    dist: Distributed = field(default_factory=Distributed)
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the forward passes)
    modules: dict[str, nn.Module] = field(default_factory=dict)  # everything trained, for the replica check

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoint"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    def elapsed(self) -> float:
        return self.wall_time_s + time.perf_counter() - self.started

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one JSON line of metrics for the epoch just finished (averaged over the processes)."""
        if self.dist.enabled:
            values = torch.tensor([float(value) for value in metrics.values()], dtype=torch.float64)
            dist.all_reduce(values)
            metrics = {key: round(value / self.dist.world_size, 4) for key, value in zip(metrics, values.tolist())}
        if not self.dist.main:
            return
        line = json.dumps({"epoch": self.epoch, "step": self.step, "wall_time_s": round(self.elapsed(), 1), **metrics})
        with open(self.folder / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        print(line, flush=True)

    def last_logged(self) -> dict[str, Any]:
        """The metrics of the last logged epoch, without the counters ({} before the first epoch)."""
        path = self.folder / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        last = json.loads(lines[-1]) if lines else {}
        return {key: value for key, value in last.items() if key not in ("epoch", "step", "wall_time_s")}

    def forget_log_after(self, epoch: int) -> None:
        """Drop metrics lines of epochs after `epoch` (logged by a run killed before it saved them)."""
        path = self.folder / "metrics.jsonl"
        if path.exists() and self.dist.main:
            kept = [
                line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch
            ]
            write_atomic(path, "".join(line + "\n" for line in kept).encode("utf-8"))

    def save_samples(self, images: torch.Tensor) -> Path:
        """Save a grid of images in [-1, 1] as samples/epoch_NNN.png (atomically; rank 0 only)."""
        path = self.folder / "samples" / f"epoch_{self.epoch:03d}.png"
        if not self.dist.main:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-" + path.name)
        save_image(images, tmp, nrow=8, normalize=True, value_range=(-1, 1), padding=2)
        tmp.replace(path)
        return path

    def save(
        self, model: nn.Module, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
    ) -> None:
        """Write the loadable checkpoint, then the resumable state; both atomically (rank 0 only)."""
        if not self.dist.main:
            return
        save_atomic(model, self.checkpoint_dir)
        counters = {"epoch": self.epoch, "step": self.step, "wall_time_s": self.elapsed(), "commands": self.commands}
        save_training_state(self.state_path, modules, optimizers, counters)

    def progress(self, steps: list) -> tqdm:
        """The epoch's progress bar over `steps` (rank 0 only shows it)."""
        description = f"epoch {self.epoch + 1}/{self.args.epochs}"
        return tqdm(steps, desc=description, leave=False, dynamic_ncols=True, disable=not self.dist.main)

    # --- several processes and the GPU fast path -------------------------------------------------

    def wrap(self, module: nn.Module, sync_batchnorm: bool = False) -> nn.Module:
        """The module to train with: DDP-wrapped across processes, compiled with --compile.

        BatchNorm: on GPUs `sync_batchnorm` makes every process normalise with the statistics of the
        global batch (SyncBatchNorm). torch's SyncBatchNorm runs on GPUs only, so on CPU each process
        normalises over its own `--batch-size` images, like one process with that batch size; the
        running statistics (not gradients) may then differ between processes and rank 0's are saved.
        `forward_sync_buffers=False` for the same reason: a GAN calls its discriminator several times per
        step, and overwriting its statistics from rank 0 before each call would race the backward pass.
        """
        if self.dist.enabled:
            if sync_batchnorm and self.device.type == "cuda":
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)
        if self.args.compile:
            if self.device.type == "cuda":
                # Inductor's channels-last layout choice for CUDA convolutions crashed fp32 training
                # (torch 2.11 on an H200: the strides it expected of convolution_backward's gradients,
                # for channels-last weights or activations, were not those cuDNN returned). Without it,
                # and with contiguous weights, fp32 trains (benchmarks/gpu_check.py).
                from torch._inductor import config as inductor_config

                inductor_config.layout_optimization = False
            module = torch.compile(module)
        return module

    def epoch_batches(self, num_items: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """This process's index batches for the epoch: all of a shuffled epoch alone, its shard with several.

        Several processes use torch's DistributedSampler (same permutation everywhere for an epoch,
        reshuffled each epoch, a disjoint equal share per rank); one process keeps `batches`, so
        single-process runs and their resumption are unchanged.
        """
        if not self.dist.enabled:
            return batches(num_items, batch_size, generator)
        sampler = DistributedSampler(
            range(num_items), self.dist.world_size, self.dist.rank, shuffle=True, seed=self.args.seed, drop_last=True
        )
        sampler.set_epoch(self.epoch)
        order = torch.tensor(list(sampler))
        return [chunk for chunk in order.split(batch_size) if len(chunk) == batch_size]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for forward passes when the run uses it, else nothing."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A CPU tensor (noise, labels) on the run's device; pinned and non-blocking for a GPU."""
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def images_on_device(self, images: torch.Tensor) -> torch.Tensor:
        """The uint8 training images where batches are cut from: on a GPU the whole set (47 MB) lives
        there, so a step copies nothing from the host; elsewhere they stay put."""
        return images.to(self.device) if self.device.type == "cuda" else images

    def check_replicas(self) -> dict[str, Any] | None:
        """With several processes: each rank's step count and a checksum of its parameters, gathered.

        DDP averages the gradients, so every replica must hold bit-identical weights after any number
        of steps even though each saw different images; rank 0 prints and returns the comparison.
        """
        if not self.dist.enabled:
            return None
        parameters = [p.detach().double().flatten() for m in self.modules.values() for p in m.parameters()]
        flat = torch.cat(parameters).cpu()
        mine = torch.tensor([float(self.step), flat.sum().item(), (flat * flat).sum().item()], dtype=torch.float64)
        gathered = [torch.zeros_like(mine) for _ in range(self.dist.world_size)]
        dist.all_gather(gathered, mine.to(self.device))
        gathered = [row.cpu() for row in gathered]
        report = {
            "processes": self.dist.world_size,
            "steps_per_rank": [int(row[0]) for row in gathered],
            "replicas_identical": all(torch.equal(row, gathered[0]) for row in gathered),
        }
        if self.dist.main:
            print(f"Replicas: {json.dumps(report)}", flush=True)
        return report


def start_run(
    args: argparse.Namespace,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    memory_format: torch.memory_format = MEMORY_FORMAT,
) -> Run:
    """Create or resume the run folder; with --resume, restore modules and optimisers from it.

    Also joins the torchrun process group when there is one, and moves everything to the device
    in `memory_format` (channels-last by default, see MEMORY_FORMAT; contiguous when compiled).
    """
    if args.dry_run:
        args.epochs = min(args.epochs, DRY_RUN_MAX_EPOCHS)
        args.batch_size = min(args.batch_size, DRY_RUN_BATCH)
    parallel, device = init_distributed(resolve_device(args.device))
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(args=args, device=device, folder=folder, dist=parallel, modules=modules)
    run.precision = resolve_precision(args.precision, device)
    if args.resume:
        if not run.state_path.exists():
            raise SystemExit(f"--resume: no training state at {run.state_path}; start without --resume.")
        counters = load_training_state(run.state_path, modules, optimizers)
        run.epoch, run.step, run.wall_time_s = counters["epoch"], counters["step"], counters["wall_time_s"]
        run.commands = counters.get("commands", [])
        run.forget_log_after(run.epoch)
        if parallel.main:
            print(f"Resuming {folder} after epoch {run.epoch} (step {run.step}).", flush=True)
    elif run.state_path.exists():
        raise SystemExit(f"{folder} already holds a run; pass --resume to continue it or choose another --out.")
    else:
        run.forget_log_after(0)  # lines of a run killed before its first save: it starts over
    run.commands.append(command_line())
    memory_format = torch.contiguous_format if args.compile else memory_format
    for module in modules.values():
        module.to(device, memory_format=memory_format)
    for optimizer in optimizers.values():
        _optimizer_to(optimizer, device)
    return run


def resolve_precision(precision: str, device: torch.device) -> str:
    """--precision auto -> bf16 on a CUDA GPU with bf16 support, fp32 elsewhere (bf16 is slower on most CPUs)."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimiser's state tensors (Adam moments) next to its parameters."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def learning_rate(step: int, total: int, base: float) -> float:
    """Linear warm-up over WARMUP_STEPS, then a cosine from `base` to FINAL_LR_SHARE * base at `total`.

    Set from the global step every step, so a resumed run follows the same schedule."""
    if step < WARMUP_STEPS:
        return base * (step + 1) / WARMUP_STEPS
    progress = min(1.0, (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS))
    return base * (FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * progress)))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so initialisation is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(args: argparse.Namespace, split: str) -> FashionMNIST:
    """The split, cut to a small subset under --dry-run, and the training split to --subset images."""
    data = load_fashion_mnist(split, args.data_dir)
    keep = None
    if args.dry_run:
        keep = DRY_RUN_IMAGES if split == "train" else DRY_RUN_IMAGES // 2
    if split == "train" and args.subset:
        keep = min(keep or args.subset, args.subset)
    if keep is not None:
        data = FashionMNIST(images=data.images[:keep], labels=data.labels[:keep], source=data.source)
    return data


def epoch_generator(args: argparse.Namespace, epoch: int, rank: int = 0) -> torch.Generator:
    """A CPU generator for epoch `epoch`'s shuffling and noise: a resumed run replays the same order.

    Each process of a distributed run draws its own noise (rank 0 that of a single-process run).
    """
    return torch.Generator().manual_seed(args.seed * 100_003 + epoch + rank * 1_000_003)


def finish(run: Run, *, family: str, title: str, summary: str, tags: list[str], load_snippet: str) -> None:
    """Write the model card (exact commands, last epoch's metrics, evaluation), then push when asked.

    The evaluation (`genmodels.evaluate.evaluate_checkpoint`, registry family `family`) puts the
    quality numbers into the card's metadata; a --dry-run skips it unless it pushes, and then uses
    few samples. With several processes, the replicas are compared first and only rank 0 goes on.
    """
    replicas = run.check_replicas()
    if run.dist.enabled:
        dist.destroy_process_group()
        if not run.dist.main:
            return
    command = "\n".join(run.commands)  # one line per session: the start, then any --resume
    samples = sorted((run.folder / "samples").glob("epoch_*.png"))
    if samples:
        write_atomic(run.checkpoint_dir / "samples.png", samples[-1].read_bytes())
    details = {
        "epochs": run.epoch,
        "optimisation steps": run.step,
        "batch size": run.args.batch_size,
        "learning rate": run.args.lr,
        "seed": run.args.seed,
        "device": str(run.device),
        "wall time": f"{run.elapsed() / 60:.1f} min",
        "threads": torch.get_num_threads(),
        "precision": run.precision,
    }
    if replicas:
        details["processes"] = f"{replicas['processes']} (batch size per process; replicas identical: "
        details["processes"] += f"{replicas['replicas_identical']})"
    card = model_card(
        title=title,
        summary=summary,
        tags=tags,
        command=command,
        details=details,
        metrics=run.last_logged(),
        load_snippet=load_snippet,
        sample_file="samples.png" if samples else None,
    )
    write_atomic(run.checkpoint_dir / "README.md", card.encode("utf-8"))
    if not run.args.dry_run or run.args.push_to_hub:
        from genmodels.evaluate import evaluate_checkpoint  # torchmetrics is slow to import; only here

        num = DRY_RUN_EVAL_SAMPLES if run.args.dry_run else EVAL_SAMPLES
        metrics = evaluate_checkpoint(family, run.checkpoint_dir, num, str(run.device), run.args.data_dir)
        print(f"Evaluation: {json.dumps(metrics)}", flush=True)
    print(f"Checkpoint: {run.checkpoint_dir}", flush=True)
    if run.args.push_to_hub:
        try:
            url = push_folder(run.checkpoint_dir, run.args.push_to_hub)
        except ValueError as exc:
            raise SystemExit(f"{exc}\nThe local checkpoint is safe in {run.checkpoint_dir}.") from exc
        print(f"Pushed to {url}", flush=True)


def command_line() -> str:
    """This session's command, e.g. `python -m training.train_gan --ema 0.999`."""
    module = "training." + Path(sys.argv[0]).stem
    return "python -m " + " ".join(shlex.quote(part) for part in [module, *sys.argv[1:]])
