"""What the three training scripts share: flags, the run folder, logging, saving and pushing, and
running as several processes under torchrun with the GPU fast path.

A run folder (`--out`, default `runs/<family>`) holds
    checkpoint/            config.json + model.safetensors + README.md (loadable by from_pretrained)
    state.safetensors      everything `--resume` needs (weights, optimisers, RNG, counters)
    samples/epoch_NNN.png  a grid from fixed noise (generative models)
    metrics.jsonl          one JSON line per epoch
    snapshots/step_NNNNNNN.png, live.jsonl   with --snapshot-seconds: the grid of what the model would
                           give if stopped now, and the losses averaged since the last snapshot, every
                           few seconds (what the app's Train tab shows while a run trains)
    at/SSSSSs/             with --keep-at: the checkpoint the run would save, as it was after SSSSS
                           seconds of training (config.json + model.safetensors; the speedrun scores them)

To end any run early but cleanly (checkpoint, card and evaluation as at its end): `touch OUT/STOP`.

A budget: `--minutes M` stops the run after M minutes of training (the end-of-run evaluation is not
counted; `--eval-samples` shortens or skips it). The run times its first CALIBRATION_STEPS steps, plans
how many steps fit in the budget, and every learning-rate schedule ends at that planned step; the plan
is saved with the state, so `--resume` follows the same schedule. The run stops at the planned step or
at the budget, whichever comes first, mid-epoch if need be, and saves its checkpoint there.

The data: Fashion-MNIST's training set, `--classes` for some of its classes only, or `--images DIR` for
a folder of the user's own pictures (each brought to 28x28 like an upload in the app).

Several processes: `torchrun --nproc_per_node=N -m training.train_gan ...` runs the same script as N
processes (gloo on CPU, nccl on CUDA). Each model is wrapped in DistributedDataParallel, each process
trains on its own shard of every epoch (torch's DistributedSampler, reshuffled per epoch), `--batch-size`
is per process, and only rank 0 logs, writes grids and checkpoints and pushes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from genmodels.checkpoint import load_training_state, save_training_state
from genmodels.data import CLASS_NAMES, FashionMNIST, batches, class_index, load_fashion_mnist
from genmodels.device import DEVICE_CHOICES, resolve_device
from genmodels.hub import model_card, push_folder, save_atomic, write_atomic
from genmodels.images import grid, png_bytes

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
CALIBRATION_STEPS = 20  # steps a --minutes run times before it plans its schedule (3 under --dry-run)
BUDGET_MARGIN = 0.98  # share of the remaining budget planned for steps and epoch ends: the rest is slack
SNAPSHOT_COST_SHARE = 0.1  # snapshots may take at most about this share of a run's time
EMA_WARMUP = 10  # an EMA with warm-up averages with decay min(decay, (1 + n) / (EMA_WARMUP + n)) at update n
STOP_FILE = "STOP"  # created in a run folder, it ends the run cleanly at the next step
EVALUATING = "Evaluating"  # the line that starts the end-of-run evaluation (the app's status reads it)
UNLIMITED_EPOCHS = 1_000_000  # --epochs of a budgeted run that did not set it: the budget stops it


def make_parser(description: str, epochs: int, batch_size: int, lr: float, out: str) -> argparse.ArgumentParser:
    """The flags every training script has, with the script's own defaults."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(default_epochs=epochs)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"number of passes over the training set (default {epochs}; with --minutes, as many as fit)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="wall-clock training budget: the schedule is planned to end there and the run stops there",
    )
    parser.add_argument(
        "--eval-samples",
        type=int,
        default=None,
        help=f"samples scored into the model card when the run ends (0 = skip; default {EVAL_SAMPLES}, "
        f"{DRY_RUN_EVAL_SAMPLES} with --dry-run)",
    )
    parser.add_argument(
        "--eval-quick", action="store_true", help="score FIDc alone at the end (no KIDc, precision/recall, IS)"
    )
    parser.add_argument(
        "--classes",
        default=None,
        help="train on these Fashion-MNIST classes only: names or indices, comma-separated (e.g. Trouser,Bag)",
    )
    parser.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="train on the pictures in DIR (PNG, JPEG, ...; each brought to 28x28 as the app does) instead",
    )
    parser.add_argument(
        "--snapshot-seconds",
        type=float,
        default=0.0,
        help="every this many seconds, a grid of the fixed seeds into snapshots/ and the losses into live.jsonl",
    )
    parser.add_argument(
        "--keep-at",
        default="",
        metavar="SECONDS,...",
        help="also keep the checkpoint as it is after these seconds of training, in OUT/at/ (e.g. 60,120,300)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training (default: torch's)")
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
        help="bf16 autocast for the forward passes; auto = bf16 on a CUDA GPU that supports it or a CPU with AMX or "
        "AVX-512 BF16, fp32 elsewhere",
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
    started: float = field(default_factory=lambda: time.perf_counter())  # (looked up at each run: patchable)
    dist: Distributed = field(default_factory=Distributed)
    precision: str = "fp32"  # "fp32" or "bf16" (autocast of the forward passes)
    modules: dict[str, nn.Module] = field(default_factory=dict)  # everything trained, for the replica check
    planned_steps: int | None = None  # a budgeted run: the step its schedule ends at (planned once, saved)
    finished: bool = False  # a budgeted run that used its budget: --resume has nothing left to train
    session_step: int = 0  # the step this session started at (--resume), for the calibration
    pace_from: tuple[float, int] = (0.0, 0)  # (perf_counter, step) the calibration times from
    last_snapshot: tuple[float, int] | None = None  # (perf_counter, step) of the last snapshot
    tracked: dict[str, list[float]] = field(default_factory=dict)  # values since the last snapshot
    stopped_s: float | None = None  # training time when the budget or a Stop ended the training steps
    snapshot_started: float | None = None  # perf_counter when the last snapshot was found due
    snapshot_cost: float = 0.0  # seconds the last snapshot took, its images included
    keep: Any = None  # --keep-at: a function saving what the checkpoint would be into a folder (the script's)
    kept: set[int] = field(default_factory=set)  # --keep-at points already kept
    steps_per_epoch: int = 0  # this process's steps in the current epoch (`epoch_batches`)
    last_step_at: float | None = None  # perf_counter after this session's last step
    epoch_first_step: tuple[float, int] | None = None  # (perf_counter, step) after this epoch's first step
    step_seconds: float | None = None  # a budgeted run: seconds per step its plan assumes (epoch ends included)
    rank_0_over: bool | None = None  # several processes: rank 0's decision to stop, after the last step

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoint"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    def elapsed(self) -> float:
        return self.wall_time_s + time.perf_counter() - self.started

    # --- the budget ------------------------------------------------------------------------------

    @property
    def budget_s(self) -> float | None:
        """The --minutes budget in seconds, or None."""
        return None if self.args.minutes is None else self.args.minutes * 60.0

    def training(self) -> bool:
        """Whether another epoch should start: epochs left, and budget left in a budgeted run."""
        if self.dist.enabled:
            self.follow_rank_0()
        return self.epoch < self.args.epochs and not self.finished and not self.out_of_budget()

    def total_steps(self, steps_per_epoch: int) -> int:
        """The step the learning-rate schedule ends at: all epochs', or a budgeted run's planned step
        (before the plan, all epochs': only the warm-up, which does not depend on it, is used then)."""
        by_epochs = max(1, steps_per_epoch * self.args.epochs)
        return min(by_epochs, self.planned_steps) if self.planned_steps else by_epochs

    def keep_points(self) -> list[int]:
        """--keep-at as whole seconds, or a SystemExit naming the bad value."""
        try:
            points = [int(float(text)) for text in self.args.keep_at.split(",") if text.strip()]
        except ValueError:
            raise SystemExit(f"--keep-at takes seconds, comma-separated, got {self.args.keep_at!r}") from None
        if any(point <= 0 for point in points):
            raise SystemExit("--keep-at takes positive seconds")
        return sorted(set(points))

    def keep_due(self) -> None:
        """Keep the checkpoint of each --keep-at point the training clock has passed (rank 0; `keep` is set
        by the script): OUT/at/SSSSSs/, written to a temporary folder and renamed into place."""
        if self.keep is None or not self.args.keep_at or not self.dist.main:
            return
        now = self.elapsed()
        for point in self.keep_points():
            if point > now or point in self.kept:
                continue
            folder = self.folder / "at" / f"{point:05d}s"
            if not folder.exists():  # (a resumed run kept it before it stopped: left as it was then)
                staging = folder.with_name(f".{folder.name}.tmp")
                self.keep(staging)
                (staging / "kept.json").write_text(json.dumps({"seconds": round(now, 2), "step": self.step}))
                staging.replace(folder)
            self.kept.add(point)

    def stepped(self) -> None:
        """Count one optimisation step; a budgeted run plans its schedule after its calibration steps.

        The plan: the steps that fit into BUDGET_MARGIN of the remaining budget at this session's pace,
        timed over its calibration steps after the first (which pays for one-off warm-ups), and over two
        snapshot intervals at least. Each epoch end re-plans from the epoch's own pace and cost (`replan`).
        --resume keeps the saved plan.
        """
        self.step += 1
        self.last_step_at = time.perf_counter()
        if self.epoch_first_step is None:
            self.epoch_first_step = (self.last_step_at, self.step)
        self.keep_due()
        if self.budget_s is not None and self.planned_steps is None:
            self.plan()
        if self.dist.enabled:
            self.follow_rank_0()

    def plan(self) -> None:
        """Plan a budgeted run's steps once this session's calibration steps are timed (see `stepped`)."""
        now = time.perf_counter()
        if self.step == self.session_step + 1:
            self.pace_from = (now, self.step)
            return
        calibration = 3 if self.args.dry_run else CALIBRATION_STEPS
        if self.step - self.pace_from[1] < calibration:
            return
        if self.args.snapshot_seconds and now - self.pace_from[0] < 2 * self.args.snapshot_seconds:
            return  # the pace includes the snapshots' cost: time at least two of them

        pace = (self.step - self.pace_from[1]) / max(now - self.pace_from[0], 1e-6)  # steps per second
        remaining = max(0.0, self.budget_s - self.elapsed())
        self.planned_steps = self.step + int(BUDGET_MARGIN * remaining * pace)
        self.step_seconds = 1.0 / pace
        if self.dist.main:
            print(f"Budget: {self.args.minutes:g} min, planned {self.planned_steps} steps", flush=True)

    def replan(self) -> None:
        """At each epoch end (from `save`, before the state is written): re-plan the remaining steps at
        the pace of the epoch just done, its end included.

        The plan assumed `step_seconds` per step. This epoch took `spp` seconds per step over its steps
        after its first (snapshots included), and its end (test evaluation, grid, checkpoint) `cost`
        seconds, timed from the last step to now, so with S steps per epoch a step now costs
        c = spp + cost / S: the n planned steps left become n * step_seconds / c. The first plan, 20 steps
        in, knew neither the epoch ends nor the pace later on: a VAE's 3-minute runs stopped 7-16% short
        of it. Only durations within the epoch count (no reading of the clock across sessions), and the
        plan is saved with the state, so --resume follows it exactly. Epochs of one step keep the plan.
        """
        first = self.epoch_first_step
        self.epoch_first_step = None
        if self.planned_steps is None or self.step_seconds is None or self.last_step_at is None or first is None:
            return
        if self.stopped_s is not None or self.step - first[1] < 1 or not self.steps_per_epoch:
            return
        cost = time.perf_counter() - self.last_step_at
        step_cost = (self.last_step_at - first[0]) / (self.step - first[1]) + cost / self.steps_per_epoch
        left = max(0, self.planned_steps - self.step)
        self.planned_steps = self.step + int(left * self.step_seconds / max(step_cost, 1e-9))
        self.step_seconds = step_cost
        if self.dist.main:
            print(
                f"Budget: {self.args.minutes:g} min, planned {self.planned_steps} steps "
                f"(an epoch end takes {cost:.1f} s)",
                flush=True,
            )

    def follow_rank_0(self) -> None:
        """With several processes, after each step and before each epoch: every rank takes rank 0's plan
        and its decision to stop (budget, plan or STOP file), so all stop at the same step; each rank's
        own clock and plan could differ by a step, and a rank stepping alone would wait forever for the
        others' gradients."""
        decision = torch.zeros(2, dtype=torch.int64)
        if self.dist.main:
            decision[0] = -1 if self.planned_steps is None else self.planned_steps
            decision[1] = int(self.over_here())
        decision = decision.to(self.device)
        dist.broadcast(decision, src=0)
        planned, over = decision.tolist()
        self.planned_steps = None if planned < 0 else planned
        self.rank_0_over = bool(over)

    def over_here(self) -> bool:
        """This process's view: asked to stop (OUT/STOP exists), or a budgeted run at its plan or out of time."""
        if self.stop_requested():
            return True
        if self.budget_s is None:
            return False
        return (self.planned_steps is not None and self.step >= self.planned_steps) or self.elapsed() >= self.budget_s

    def out_of_budget(self) -> bool:
        """A budgeted run at its planned step or out of time, or any run asked to stop (OUT/STOP exists):
        the epoch stops there and the run saves and finishes as at its end (`stopped_s` records when).
        With several processes, every rank answers rank 0's decision at the last step or epoch start."""
        over = self.rank_0_over if self.dist.enabled and self.rank_0_over is not None else self.over_here()
        if over and self.stopped_s is None:
            self.stopped_s = round(self.elapsed(), 2)
        return over

    def stop_requested(self) -> bool:
        """Whether a file named STOP appeared in the run folder (`touch OUT/STOP`: the app's Stop button)."""
        return (self.folder / STOP_FILE).exists()

    # --- live snapshots --------------------------------------------------------------------------

    def track(self, **values: float) -> None:
        """Record this step's losses; the next snapshot logs their averages."""
        if self.args.snapshot_seconds:
            for key, value in values.items():
                self.tracked.setdefault(key, []).append(float(value))

    def snapshot_due(self) -> bool:
        """Whether a snapshot is due: --snapshot-seconds since the last one (the first one at once), or
        SNAPSHOT_COST_SHARE's worth of training time when snapshots take longer than that (a flow's grid
        is an ODE solve), so they never slow a run by more than about a tenth."""
        if not self.args.snapshot_seconds or not self.dist.main:
            return False
        now = time.perf_counter()
        if self.last_snapshot is not None:
            interval = max(self.args.snapshot_seconds, self.snapshot_cost / SNAPSHOT_COST_SHARE)
            if now - self.last_snapshot[0] < interval:
                return False
        self.snapshot_started = now
        return True

    def snapshot(self, images: torch.Tensor, **extra: float) -> Path | None:
        """Write the grid `images` (in [-1, 1]) as snapshots/step_NNNNNNN.png and a line to live.jsonl:
        step, elapsed time, images per second and the tracked values' averages (both atomically)."""
        if not self.args.snapshot_seconds or not self.dist.main:
            return None
        now = time.perf_counter()
        path = self.folder / "snapshots" / f"step_{self.step:07d}.png"
        write_atomic(path, png_bytes(grid(images.float(), nrow=8)))
        line: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "elapsed_s": round(self.elapsed(), 2)}
        if self.budget_s is not None:
            line["budget_s"] = self.budget_s
        if self.last_snapshot is not None and self.step > self.last_snapshot[1]:
            images_per_step = self.args.batch_size * self.dist.world_size
            pace = (self.step - self.last_snapshot[1]) * images_per_step / (now - self.last_snapshot[0])
            line["images_per_s"] = round(pace, 1)
        line.update({key: round(sum(v) / len(v), 5) for key, v in self.tracked.items() if v})
        line.update({key: round(float(value), 5) for key, value in extra.items()})
        line["snapshot"] = path.name
        with open(self.folder / "live.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        self.tracked = {}
        first = self.last_snapshot is None
        self.last_snapshot = (time.perf_counter(), self.step)
        if self.snapshot_started is not None and not first:  # its images included (the first pays one-off warm-ups)
            self.snapshot_cost = self.last_snapshot[0] - self.snapshot_started
        return path

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one JSON line of metrics for the epoch just finished (averaged over the processes)."""
        if self.dist.enabled:
            values = torch.tensor([float(value) for value in metrics.values()], dtype=torch.float64)
            dist.all_reduce(values)
            metrics = {key: round(value / self.dist.world_size, 4) for key, value in zip(metrics, values.tolist())}
        if not self.dist.main:
            return
        counters = {"epoch": self.epoch, "step": self.step, "wall_time_s": round(self.elapsed(), 1)}
        if self.stopped_s is not None:  # the steps ended here; the rest of wall_time_s is the epoch's evaluation
            counters["stopped_s"] = self.stopped_s
        line = json.dumps({**counters, **metrics})
        with open(self.folder / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        print(line, flush=True)

    def last_logged(self) -> dict[str, Any]:
        """The metrics of the last logged epoch, without the counters ({} before the first epoch)."""
        path = self.folder / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        last = json.loads(lines[-1]) if lines else {}
        return {key: value for key, value in last.items() if key not in ("epoch", "step", "wall_time_s", "stopped_s")}

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
        write_atomic(path, png_bytes(grid(images.float(), nrow=8)))
        return path

    def save(
        self, model: nn.Module, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
    ) -> None:
        """Write the loadable checkpoint, then the resumable state; both atomically (rank 0 only)."""
        if not self.dist.main:
            return
        save_atomic(model, self.checkpoint_dir)
        if self.budget_s is not None:
            self.replan()
        counters = {"epoch": self.epoch, "step": self.step, "wall_time_s": self.elapsed(), "commands": self.commands}
        if self.budget_s is not None:
            counters.update(
                planned_steps=self.planned_steps, finished=self.out_of_budget(), step_seconds=self.step_seconds
            )
        save_training_state(self.state_path, modules, optimizers, counters)

    def progress(self, steps: list) -> tqdm:
        """The epoch's progress bar over `steps` (rank 0 only shows it)."""
        description = f"epoch {self.epoch + 1}" + ("" if self.budget_s else f"/{self.args.epochs}")
        quiet = not self.dist.main or os.environ.get("TQDM_DISABLE") == "1"  # (the app's jobs: no bars in logs)
        return tqdm(steps, desc=description, leave=False, dynamic_ncols=True, disable=quiet)

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
            chosen = batches(num_items, batch_size, generator)
            self.steps_per_epoch = len(chosen)
            return chosen
        sampler = DistributedSampler(
            range(num_items), self.dist.world_size, self.dist.rank, shuffle=True, seed=self.args.seed, drop_last=True
        )
        sampler.set_epoch(self.epoch)
        order = torch.tensor(list(sampler))
        chosen = [chunk for chunk in order.split(batch_size) if len(chunk) == batch_size]
        self.steps_per_epoch = len(chosen)
        return chosen

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
    if args.epochs is None:
        args.epochs = UNLIMITED_EPOCHS if args.minutes is not None else args.default_epochs
    if args.minutes is not None and not 0 < args.minutes <= 7 * 24 * 60:
        raise SystemExit(f"--minutes must be above 0 and at most a week, got {args.minutes}.")
    if args.dry_run:
        args.epochs = min(args.epochs, DRY_RUN_MAX_EPOCHS) if args.minutes is None else args.epochs
        args.batch_size = min(args.batch_size, DRY_RUN_BATCH)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be at least 1, got {args.threads}.")
        torch.set_num_threads(args.threads)
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
        run.planned_steps, run.finished = counters.get("planned_steps"), counters.get("finished", False)
        run.step_seconds = counters.get("step_seconds")  # (None in older states: their plan stays)
        run.session_step = run.step
        run.forget_log_after(run.epoch)
        if parallel.main:
            print(f"Resuming {folder} after epoch {run.epoch} (step {run.step}).", flush=True)
    elif run.state_path.exists():
        raise SystemExit(f"{folder} already holds a run; pass --resume to continue it or choose another --out.")
    else:
        run.forget_log_after(0)  # lines of a run killed before its first save: it starts over
    if parallel.main:
        (folder / STOP_FILE).unlink(missing_ok=True)  # a stop asked of an earlier session is spent
    run.commands.append(command_line())
    memory_format = torch.contiguous_format if args.compile else memory_format
    for module in modules.values():
        module.to(device, memory_format=memory_format)
    for optimizer in optimizers.values():
        _optimizer_to(optimizer, device)
    return run


def resolve_precision(precision: str, device: torch.device) -> str:
    """--precision auto -> bf16 where the hardware computes it natively: a CUDA GPU with bf16 support, or a
    CPU with AMX tiles or AVX-512 BF16 instructions (there a training step is 1.5-3x faster,
    docs/speedrun.md); fp32 elsewhere (where bf16 is emulated and was not measured to pay off)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively, as oneDNN uses it: AMX tiles (Intel Sapphire Rapids and
    later) or AVX-512 BF16 dot products (Intel Cooper Lake, AMD Zen 4 and later)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe and probe() for probe in probes)  # (private functions: absent means no)


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimiser's state tensors (Adam moments) next to its parameters."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def learning_rate(step: int, total: int, base: float) -> float:
    """Linear warm-up over WARMUP_STEPS (a tenth of `total` when that is shorter), then a cosine from
    `base` to FINAL_LR_SHARE * base at `total`.

    Set from the global step every step, so a resumed run follows the same schedule."""
    warmup = max(1, min(WARMUP_STEPS, total // 10))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * progress)))


def add_ema_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--ema and --ema-warmup, the GAN's and the flow's: an average of `what` saved as the checkpoint,
    0.999 with warm-up by default (without it, a run of minutes saves an average that still holds the
    initial weights: docs/speedrun.md)."""
    parser.add_argument("--ema", type=float, default=0.999, help=f"decay of the moving average of {what} (0 = off)")
    parser.add_argument(
        "--ema-warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let the average's decay grow from 0 to --ema (off: it starts at the initial weights and lags short runs)",
    )


def ema_average(module: nn.Module, decay: float, warmup: bool = False) -> AveragedModel:
    """torch's exponential moving average of `module`'s weights; with `warmup`, decay
    min(decay, (1 + n) / (EMA_WARMUP + n)) at update n (as TensorFlow's ExponentialMovingAverage with
    num_updates), so early on the average follows the weights instead of holding the initial ones."""
    if not warmup:
        return AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay))

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = int(num_averaged)
        weight = 1.0 - min(decay, (1 + n) / (EMA_WARMUP + n))
        torch._foreach_lerp_(averaged, current, weight)

    return AveragedModel(module, multi_avg_fn=update)


def optimizers_for(name: str, module: nn.Module, make_adam, muon: bool = False, lr: float = 0.0) -> dict:
    """`module`'s optimisers, keyed for `save`: {name: make_adam(its parameters)}; with `muon`,
    torch.optim.Muon at `lr` for the weights of its linear layers (momentum orthogonalised by
    Newton-Schulz iterations, its update scaled to AdamW's RMS, "match_rms_adamw", so one learning rate
    serves both) as `name`-muon, and make_adam for the rest (convolutions, biases, norms, embeddings).
    A module without linear layers (the DCGAN's generator) has make_adam alone."""
    linear = {id(layer.weight) for layer in module.modules() if isinstance(layer, nn.Linear)}
    matrices = [p for p in module.parameters() if id(p) in linear]
    if not muon or not matrices:
        return {name: make_adam(list(module.parameters()))}
    rest = [p for p in module.parameters() if id(p) not in linear]
    muon_optimizer = torch.optim.Muon(matrices, lr=lr, weight_decay=0.0, adjust_lr_fn="match_rms_adamw")
    return {name: make_adam(rest), f"{name}-muon": muon_optimizer}


class JointOptimizer:
    """Several optimisers of one module stepped as one (`optimizers_for` with Muon): zero_grad, step, and
    their param_groups together, where a schedule sets the learning rate."""

    def __init__(self, parts: dict[str, torch.optim.Optimizer]):
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [group for part in self.parts.values() for group in part.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts.values():
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts.values():
            part.step()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so initialisation is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parse_classes(text: str | None) -> list[int]:
    """--classes "Trouser,Bag" (names or indices) -> sorted class indices; empty or None: []."""
    if not text or not text.strip():
        return []
    try:
        return sorted({class_index(part.strip()) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise SystemExit(f"--classes: {exc}") from exc


def data_description(args: argparse.Namespace, data: FashionMNIST) -> str:
    """What the run learned from, for the model card."""
    if args.images:
        return f"{len(data)} of the user's own pictures, each brought to 28x28"
    classes = parse_classes(args.classes)
    if classes:
        return f"Fashion-MNIST's {len(data)} training images of " + ", ".join(CLASS_NAMES[c] for c in classes)
    return f"Fashion-MNIST's {len(data)} training images"


@functools.lru_cache(maxsize=1)
def own_pictures(folder: str) -> torch.Tensor:
    """--images prepared once per run (both splits, the card's description and its reference use them)."""
    from genmodels.pictures import load_picture_folder

    try:
        return torch.from_numpy(load_picture_folder(folder).images)
    except ValueError as exc:
        raise SystemExit(f"--images: {exc}") from exc


def load_split(args: argparse.Namespace, split: str) -> FashionMNIST:
    """The split, cut to a small subset under --dry-run, and the training split to --subset images.

    With --classes, those classes' images only; with --images, the user's pictures for both splits
    (labels -1: no class), each prepared like an upload in the app.
    """
    if args.images:
        images = own_pictures(str(args.images))
        return FashionMNIST(images=images, labels=torch.full((len(images),), -1), source=str(args.images))
    data = load_fashion_mnist(split, args.data_dir)
    classes = parse_classes(args.classes)
    if classes:
        keep_mask = torch.isin(data.labels, torch.tensor(classes))
        data = FashionMNIST(images=data.images[keep_mask], labels=data.labels[keep_mask], source=data.source)
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
        "data": data_description(run.args, load_split(run.args, "train")),
        "epochs": run.epoch,
        "optimisation steps": run.step,
        "batch size": run.args.batch_size,
        "learning rate": run.args.lr,
        "seed": run.args.seed,
        "device": str(run.device),
        "wall time": f"{run.elapsed() / 60:.1f} min",
        **({"budget": f"{run.args.minutes:g} min"} if run.budget_s is not None else {}),
        "threads": torch.get_num_threads(),
        "precision": run.precision,
    }
    if replicas:
        details["processes"] = f"{replicas['processes']} (batch size per process; replicas identical: "
        details["processes"] += f"{replicas['replicas_identical']})"
    card = model_card(
        name=run.folder.name,  # the run's OUT, not its checkpoint/ folder
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
    num = run.args.eval_samples
    if num is None:
        num = (
            0
            if run.args.dry_run and not run.args.push_to_hub
            else DRY_RUN_EVAL_SAMPLES
            if run.args.dry_run
            else EVAL_SAMPLES
        )
    if num > 0:
        print(f"{EVALUATING} {num} samples", flush=True)
        from genmodels.evaluate import evaluate_checkpoint  # torchmetrics is slow to import; only here

        reference, classes = None, None
        if run.args.images or run.args.classes:  # scored against what it learned from
            reference = load_split(run.args, "test").images
            classes = [] if run.args.images else parse_classes(run.args.classes)
        metrics = evaluate_checkpoint(
            family,
            run.checkpoint_dir,
            num,
            str(run.device),
            run.args.data_dir,
            reference,
            classes,
            quick=run.args.eval_quick,
        )
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
