"""Faults: a training run killed at any moment resumes, and whatever checkpoint is on disk loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genmodels.checkpoint import load_training_state
from genmodels.registry import load_model
from tests.conftest import needs_data

ROOT = Path(__file__).resolve().parent.parent


# When to kill: as soon as this path (relative to the run folder) exists, plus a delay in seconds.
KILL_POINTS = {
    "while starting": (None, 0.5),
    "right after the first metrics line": ("metrics.jsonl", 0.0),
    "while the first checkpoint is written": ("checkpoint", 0.0),
    "right after the first training state": ("state.safetensors", 0.0),
    "during the second epoch": ("state.safetensors", 0.3),
}


def kill_when(process: subprocess.Popen, path: Path | None, delay: float, timeout: float = 120) -> None:
    """SIGKILL `process` once `path` exists (or at once when None), after `delay` seconds."""
    deadline = time.monotonic() + timeout
    while path is not None and not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


@needs_data
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint_and_a_resumable_run(point, tmp_path):
    command = [
        sys.executable,
        "-m",
        "training.train_vae",
        "--dry-run",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched, delay = KILL_POINTS[point]
    kill_when(process, tmp_path / watched if watched else None, delay)

    # Whatever is on disk loads: the checkpoint folder and the resumable state are whole or absent.
    if (tmp_path / "checkpoint" / "model.safetensors").exists():
        model = load_model("vae", source=tmp_path / "checkpoint")
        if (tmp_path / "state.safetensors").exists():
            load_training_state(tmp_path / "state.safetensors", {"vae": model}, {})
    resume = ["--resume"] if (tmp_path / "state.safetensors").exists() else []
    finished = subprocess.run(command + resume, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert load_model("vae", source=tmp_path / "checkpoint") is not None
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2], "one metrics line per epoch, none repeated"
