"""The Train tab's job runner: slots and the line, one job per session, stops, and files that go."""

from __future__ import annotations

import sys
import time

import pytest

from training import jobs
from training.jobs import JobRunner


@pytest.fixture
def sleepy(monkeypatch):
    """Jobs whose process sleeps instead of training (the runner's bookkeeping alone)."""
    monkeypatch.setattr(jobs, "training_command", lambda *args, **kwargs: [sys.executable, "-c", SLEEP])


SLEEP = "import time\nfor _ in range(600): time.sleep(0.05)"


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_slot_makes_a_line_and_each_job_sees_its_place(sleepy, tmp_path):
    runner = JobRunner(tmp_path / "runner", slots=1)
    first = runner.submit("a", "vae", budget_s=30)
    second = runner.submit("b", "dcgan", budget_s=30)
    third = runner.submit("c", "flow", budget_s=30)
    assert first.state == "running" and first.process.poll() is None
    assert (second.state, runner.position(second)) == ("queued", 1)
    assert runner.position(third) == 2
    import os

    assert os.getpriority(os.PRIO_PROCESS, first.process.pid) == 19, "the lowest CPU priority"
    with pytest.raises(ValueError, match="already under way"):
        runner.submit("a", "vae", budget_s=30)
    runner.stop("b")  # a waiting job is dropped, and the one behind it moves up
    assert second.state == "failed" and runner.position(third) == 1
    runner.forget("a")  # the session ended: its process is killed, its folder deleted, the next one starts
    assert first.process.poll() is not None and not first.folder.exists()
    assert third.state == "running"
    runner.close()
    assert third.process.poll() is not None


def test_stop_asks_the_script_to_finish_and_nothing_to_stop_says_so(sleepy, tmp_path):
    runner = JobRunner(tmp_path / "runner", slots=1)
    with pytest.raises(ValueError, match="Nothing to stop"):
        runner.stop("a")
    job = runner.submit("a", "vae", budget_s=30)
    runner.stop("a")
    assert (job.run_dir / jobs.STOP_FILE).is_file(), "the script ends itself cleanly at its next step"
    runner.close()


def test_ended_jobs_are_deleted_after_their_time_to_live(monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "training_command", lambda *args, **kwargs: [sys.executable, "-c", "pass"])
    forgotten = []
    runner = JobRunner(tmp_path / "runner", slots=1, ttl_s=0.5)
    runner.on_forget = lambda session, job: forgotten.append(session)
    job = runner.submit("a", "vae", budget_s=30)
    wait_for(lambda: runner.job("a") is not None and runner.job("a").state != "running")
    assert job.state == "failed", "no checkpoint was written: the job failed, with the script's last words"
    assert job.folder.exists()
    wait_for(lambda: not job.folder.exists(), seconds=5)  # the background pruning
    assert forgotten == ["a"] and runner.job("a") is None
    runner.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"family": "gan"}, "Pick a model family"),
        ({"budget_s": 10}, "Time budget"),
        ({"budget_s": 3600}, "Time budget"),
        ({"lr": float("nan")}, "Learning rate"),
        ({"batch_size": 0}, "Batch size"),
        ({"width": 1.5}, "Width"),
        ({"classes": ["Socks"]}, "Unknown class"),
    ],
)
def test_bad_requests_name_the_bad_value_and_start_nothing(sleepy, tmp_path, options, message):
    runner = JobRunner(tmp_path / "runner", slots=1, max_minutes=10)
    with pytest.raises(ValueError, match=message):
        runner.submit("a", **{"family": "vae", **options})
    assert runner.jobs == {} and not any(runner.root.glob("*/run"))
    runner.close()


def test_the_command_is_the_cli_s_with_the_budget_and_the_data(tmp_path):
    command = jobs.training_command("flow", tmp_path / "run", 90, [1, 8], None, 1e-3, 64, 8)
    assert command[1:3] == ["-m", "training.train_flow"]
    rest = command[3:]
    flags = {
        token: (rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("--") else True)
        for i, token in enumerate(rest)
        if token.startswith("--")
    }
    assert flags["--minutes"] == "1.5000" and flags["--threads"] == "1" and flags["--classes"] == "1,8"
    assert flags["--channels"] == "8,16,32" and flags["--eval-samples"] == str(jobs.EVAL_SAMPLES)
    assert "--images" not in flags
    # the tab runs the script's own recipe (the speedrun's: EMA with warm-up, precision auto), unchanged
    assert not {"--ema", "--no-ema-warmup", "--precision"} & set(flags), flags
