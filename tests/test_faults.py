"""Faults: a training run killed at any moment resumes, and whatever checkpoint is on disk loads; the app
starts without a broken checkpoint, survives a failing request, and holds up under a short load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from gradio_client.exceptions import AppError

from benchmarks.bench_load import free_port, run_load, start_server
from genmodels.checkpoint import load_training_state
from genmodels.registry import load_model
from tests.conftest import needs_data, served

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
    assert torch.isfinite(load_model("vae", source=tmp_path / "checkpoint").sample(2, seed=0)).all()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2], "one metrics line per epoch, none repeated"


def test_app_starts_without_a_corrupt_and_a_missing_checkpoint_and_names_them(tmp_path):
    """A copy of the app whose VAE weights are truncated and whose cGAN folder is gone."""
    for name in ("app.py", "genmodels", "ui", "training", "checkpoints"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, tmp_path / name)
    weights = tmp_path / "checkpoints" / "vae-fashion" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    shutil.rmtree(tmp_path / "checkpoints" / "cgan-fashion")

    port = free_port()
    server = start_server(port, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, ssl_verify=False)
        config = json.dumps(client.config)
        assert "Not loaded" in config and "**vae**" in config and "**cgan**" in config
        assert "folder cgan-fashion for model 'cgan' does not exist" in config, "the notice says what is missing..."
        assert str(tmp_path) not in config and "/checkpoints/" not in config, "...without server paths"
        grid, *_ = client.predict(model="dcgan", seed=0, num=4, api_name="/generate")
        assert Path(grid).is_file(), "the remaining models serve"
        with pytest.raises(AppError, match="vae"):  # the picker offers only the loaded models
            client.predict(model="vae", seed=0, num=4, api_name="/generate")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_failing_request_spares_the_others_and_the_server(monkeypatch):
    """An unexpected exception inside one request: that caller gets an error, everyone else their result."""
    import app

    real = app.lab.generate

    def flaky(model, seed, *args, **kwargs):
        if seed == 13:
            raise RuntimeError("simulated failure inside the model")
        return real(model, seed, *args, **kwargs)

    monkeypatch.setattr(app.lab, "generate", flaky)
    with served(app.demo) as url:
        client = Client(url, verbose=False, ssl_verify=False)
        jobs = {seed: client.submit(model="dcgan", seed=seed, num=4, api_name="/generate") for seed in range(10, 17)}
        for seed, job in jobs.items():
            if seed == 13:
                with pytest.raises(AppError):
                    job.result(timeout=60)
            else:
                assert Path(job.result(timeout=60)[0]).is_file()
        assert client.predict(api_name="/ping") == "pong"


def test_a_short_load_leaves_no_errors_and_a_live_server():
    """The load benchmark in small: 8 sessions, 80 requests over every endpoint (timings not asserted)."""
    report = run_load(clients=8, requests=80)
    assert report["errors"] == [] and report["completed"] == 80
    assert report["server_alive"]
    assert report["rss_after_mb"] - report["rss_before_mb"] < 150


def test_a_user_error_writes_one_log_line_and_no_traceback(tmp_path):
    """Bad inputs are the user's business: one line each (endpoint and message); tracebacks are for faults."""
    port = free_port()
    with open(tmp_path / "log", "w+b") as output:
        server = start_server(port, output=output)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, ssl_verify=False)
            bad = [
                {"model": "dcgan", "seed": 1.5, "api_name": "/generate"},
                {"model": "nope", "seed": 0, "api_name": "/generate"},
                {"keys": None, "model": "dcgan", "api_name": "/keyframes"},
                {"text": "[1, 2]", "api_name": "/load_settings"},
            ]
            for request in bad:
                with pytest.raises(AppError):
                    client.predict(**request)
            assert client.predict(api_name="/ping") == "pong"
            deadline = time.monotonic() + 10  # until the last refusal's line is in the log
            while os.pread(output.fileno(), 1 << 20, 0).count(b"User error in") < len(bad):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait(timeout=30)
        output.seek(0)
        log = output.read().decode()
    user_lines = [line for line in log.splitlines() if "User error in" in line]
    assert len(user_lines) == len(bad), log
    assert "Traceback" not in log, log
    assert any("generate: Seed must be a whole number, got 1.5." in line for line in user_lines), user_lines


def test_identical_requests_at_the_same_moment_all_get_whole_files():
    """8 clients sending the same image to /roundtrip and the same seed to /generate, 6 times each:
    no error, and every file they get back is a whole picture (before: failed downloads, 0-byte PNGs)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import handle_file
    from PIL import Image

    from genmodels.data import EXAMPLES_DIR

    example = str(sorted(EXAMPLES_DIR.glob("*.png"))[0])
    port = free_port()
    server = start_server(port)
    try:
        url = f"http://127.0.0.1:{port}/"

        def client_session(index: int) -> list[str]:
            client = Client(url, verbose=False, ssl_verify=False)
            files = []
            for _ in range(6):
                steps, (before, after), heat, *_ = client.predict(image=handle_file(example), api_name="/roundtrip")
                grid, _ = client.predict(model="dcgan", seed=0, num=16, api_name="/generate")
                files += [before, after, heat, grid]
            return files

        with ThreadPoolExecutor(8) as pool:
            files = [path for session in pool.map(client_session, range(8)) for path in session]
        assert len(files) == 8 * 6 * 4
        for path in files:
            with Image.open(path) as image:
                image.load()  # a truncated or empty file fails here
        grids = {Path(path).read_bytes() for path in files[3::4]}
        assert len(grids) == 1, "the same seed, the same grid, for everyone"
    finally:
        server.terminate()
        server.wait(timeout=30)
