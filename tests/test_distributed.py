"""Several processes: each training script under torchrun (2 CPU processes, gloo) and the sharding."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.lab import Lab
from genmodels.registry import load_model
from tests.conftest import SCRIPTS, needs_data
from training.common import Distributed, Run

ROOT = Path(__file__).resolve().parent.parent


def two_processes(script: str, out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    """A --dry-run of `script` as 2 torchrun processes on the CPU: it succeeds; returns the result and the
    replica comparison rank 0 printed."""
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", f"training.{script}", "--dry-run", "--device", "cpu", "--out", str(out), *flags),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("Replicas: "))
    return result, json.loads(line.removeprefix("Replicas: "))


@needs_data
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_two_processes_train_in_step_and_only_rank_0_writes(name, tmp_path):
    out = tmp_path / "run"
    result, replicas = two_processes(SCRIPTS[name], out, "--epochs", "2")

    # Both ranks took their steps (the dry run's 256 images split in two: 4 batches of 32 per epoch
    # each) and, having seen different images, hold identical weights: the gradients were averaged.
    assert replicas == {"processes": 2, "steps_per_rank": [8, 8], "replicas_identical": True}

    # Only rank 0 logs and writes: one metrics line per epoch, one checkpoint message.
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2] and lines[-1]["step"] == 8
    assert result.stdout.count("Checkpoint:") == 1
    assert "processes: 2" in (out / "checkpoint" / "README.md").read_text()

    # The checkpoint is an ordinary one: it loads by itself and in the app's lab.
    model = load_model(name, source=out / "checkpoint")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    lab = Lab("cpu", {name: out / "checkpoint"})
    assert name in lab.models and name not in lab.broken


def fake_run(rank: int, world_size: int, epoch: int = 0) -> Run:
    args = argparse.Namespace(seed=0, compile=False)
    return Run(args=args, device=torch.device("cpu"), folder=Path("."), epoch=epoch, dist=Distributed(rank, world_size))


def test_each_rank_gets_its_own_shard_reshuffled_every_epoch():
    generator = torch.Generator().manual_seed(0)
    shards = [torch.cat(fake_run(rank, 2).epoch_batches(1000, 50, generator)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 500
    assert not set(shards[0].tolist()) & set(shards[1].tolist()), "disjoint"
    assert set(shards[0].tolist()) | set(shards[1].tolist()) == set(range(1000)), "the whole epoch"
    next_epoch = torch.cat(fake_run(0, 2, epoch=1).epoch_batches(1000, 50, generator))
    assert not torch.equal(shards[0], next_epoch), "reshuffled per epoch"
    again = torch.cat(fake_run(0, 2).epoch_batches(1000, 50, generator))
    assert torch.equal(shards[0], again), "the same epoch gives the same shard (resume)"


def test_one_process_keeps_the_single_process_order():
    from genmodels.data import batches

    a = fake_run(0, 1).epoch_batches(300, 32, torch.Generator().manual_seed(5))
    b = batches(300, 32, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)


@needs_data
def test_a_budgeted_run_on_two_processes_stops_every_rank_at_rank_0s_step(tmp_path):
    """--minutes under torchrun: each rank's clock and plan could differ by a step, and a rank stepping
    alone would wait for the other's gradients forever; all follow rank 0's plan and stop together."""
    out = tmp_path / "run"
    _, replicas = two_processes("train_vae", out, "--minutes", "0.1", "--eval-samples", "0", "--threads", "1")
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert replicas["steps_per_rank"] == [last["step"], last["step"]] and replicas["replicas_identical"]
    assert last["step"] > 8, "it trained past its first epoch, on its budget"
