"""What the three training scripts share: flags, the run folder, logging, saving and pushing.

A run folder (`--out`, default `runs/<family>`) holds
    checkpoint/            config.json + model.safetensors + README.md (loadable by from_pretrained)
    state.safetensors      everything `--resume` needs (weights, optimisers, RNG, counters)
    samples/epoch_NNN.png  a grid from fixed noise (generative models)
    metrics.jsonl          one JSON line per epoch
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.utils import save_image

from genmodels.checkpoint import load_training_state, save_training_state
from genmodels.data import FashionMNIST, load_fashion_mnist
from genmodels.device import DEVICE_CHOICES, resolve_device
from genmodels.hub import model_card, push_folder, save_atomic, write_atomic

DRY_RUN_IMAGES = 256  # training images used by --dry-run
DRY_RUN_MAX_EPOCHS = 2
DRY_RUN_BATCH = 32
EVAL_SAMPLES = 10_000  # samples scored into the model card when a run finishes
DRY_RUN_EVAL_SAMPLES = 200


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
    return parser


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

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / "checkpoint"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    def elapsed(self) -> float:
        return self.wall_time_s + time.perf_counter() - self.started

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one JSON line of metrics for the epoch just finished."""
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
        if path.exists():
            kept = [
                line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch
            ]
            write_atomic(path, "".join(line + "\n" for line in kept).encode("utf-8"))

    def save_samples(self, images: torch.Tensor) -> Path:
        """Save a grid of images in [-1, 1] as samples/epoch_NNN.png (atomically)."""
        path = self.folder / "samples" / f"epoch_{self.epoch:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-" + path.name)
        save_image(images, tmp, nrow=8, normalize=True, value_range=(-1, 1), padding=2)
        tmp.replace(path)
        return path

    def save(
        self, model: nn.Module, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
    ) -> None:
        """Write the loadable checkpoint, then the resumable state; both atomically."""
        save_atomic(model, self.checkpoint_dir)
        counters = {"epoch": self.epoch, "step": self.step, "wall_time_s": self.elapsed(), "commands": self.commands}
        save_training_state(self.state_path, modules, optimizers, counters)


def start_run(
    args: argparse.Namespace, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> Run:
    """Create or resume the run folder; with --resume, restore modules and optimisers from it."""
    if args.dry_run:
        args.epochs = min(args.epochs, DRY_RUN_MAX_EPOCHS)
        args.batch_size = min(args.batch_size, DRY_RUN_BATCH)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(args=args, device=resolve_device(args.device), folder=folder)
    if args.resume:
        if not run.state_path.exists():
            raise SystemExit(f"--resume: no training state at {run.state_path}; start without --resume.")
        counters = load_training_state(run.state_path, modules, optimizers)
        run.epoch, run.step, run.wall_time_s = counters["epoch"], counters["step"], counters["wall_time_s"]
        run.commands = counters.get("commands", [])
        run.forget_log_after(run.epoch)
        print(f"Resuming {folder} after epoch {run.epoch} (step {run.step}).", flush=True)
    elif run.state_path.exists():
        raise SystemExit(f"{folder} already holds a run; pass --resume to continue it or choose another --out.")
    else:
        run.forget_log_after(0)  # lines of a run killed before its first save: it starts over
    run.commands.append(command_line())
    for module in modules.values():
        module.to(run.device)
    for optimizer in optimizers.values():
        _optimizer_to(optimizer, run.device)
    return run


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimiser's state tensors (Adam moments) next to its parameters."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so initialisation is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(args: argparse.Namespace, split: str) -> FashionMNIST:
    """The split, cut to a small subset under --dry-run."""
    data = load_fashion_mnist(split, args.data_dir)
    if args.dry_run:
        keep = DRY_RUN_IMAGES if split == "train" else DRY_RUN_IMAGES // 2
        data = FashionMNIST(images=data.images[:keep], labels=data.labels[:keep], source=data.source)
    return data


def epoch_generator(args: argparse.Namespace, epoch: int) -> torch.Generator:
    """A CPU generator for epoch `epoch`'s shuffling and noise: a resumed run replays the same order."""
    return torch.Generator().manual_seed(args.seed * 100_003 + epoch)


def finish(run: Run, *, family: str, title: str, summary: str, tags: list[str], load_snippet: str) -> None:
    """Write the model card (exact commands, last epoch's metrics, evaluation), then push when asked.

    The evaluation (`genmodels.evaluate.evaluate_checkpoint`, registry family `family`) puts the
    quality numbers into the card's metadata; a --dry-run skips it unless it pushes, and then uses
    few samples.
    """
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
    }
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
