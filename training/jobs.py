"""Training jobs for the app: each a training script in its own process, writing into its own folder.

The app never trains in its own process. A job is `python -m training.<script> --out JOB/run
--minutes ... --snapshot-seconds ...` started as a new process (one thread, lowest CPU priority), so
a page, the CLI and the tests share one training path; the script writes its snapshots, live.jsonl,
metrics and checkpoint atomically into JOB/run, and the page only reads them (the way TensorBoard
reads event files). At most `slots` jobs run at once; the others wait in line. Each browser or API
session has at most one job; its folder is deleted when the session ends, or `ttl_s` after the job
ends at the latest.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from genmodels.data import CLASS_NAMES, class_index

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MIN_BUDGET_S = 15
SLOTS = 1  # jobs training at once (app.py --train-slots)
MAX_MINUTES = 10.0  # the longest budget a job may ask for (app.py --train-max-minutes)
TTL_S = 3600  # a finished job's folder is deleted this long after it ended, at the latest
EVAL_SAMPLES = 1000  # the quick FIDc of a finished job
STOP_GRACE_S = 60  # after a Stop, seconds the script has to save its checkpoint before it is killed
# After its budget, seconds a job has for its last epoch's evaluation and its quick FIDc (a flow's 1,000
# samples take ~25 s on a thread of this 2-core CPU; a loaded machine, several times that).
EVAL_ALLOWANCE_S = 300
# training.common.STOP_FILE, not imported from there: the server must not load torchvision (a test checks both)
STOP_FILE = "STOP"
EVALUATING = "Evaluating"  # training.common.EVALUATING, likewise


@dataclass(frozen=True)
class Recipe:
    """A family's training script and the knobs the Train tab offers, with their defaults."""

    script: str
    lr: float
    batch_size: int
    width: int  # the first layer's channels; the others scale with it (the rest: the script's defaults)

    def width_flags(self, family: str, width: int) -> list[str]:
        """The script's flags for the model width `width`."""
        if family == "flow":
            return ["--channels", f"{width},{2 * width},{4 * width}"]
        if family == "dcgan":
            return ["--gen-width", str(width), "--disc-width", str(width)]
        return ["--width", str(width)]


# The scripts' own recipes: their defaults, the speedrun's winners (docs/speedrun.md), bf16 where the CPU
# computes it natively (AMX or AVX-512 BF16). The flow keeps a quarter of the bundled model's width (the
# size of its guide network) on batches of 64: a job has one thread and minutes, and takes enough steps to
# learn. docs/training.md holds what `bench_train` measured with them.
RECIPES: dict[str, Recipe] = {
    "vae": Recipe("train_vae", lr=1e-3, batch_size=128, width=32),
    "dcgan": Recipe("train_gan", lr=1e-3, batch_size=128, width=32),
    "flow": Recipe("train_flow", lr=2e-3, batch_size=64, width=8),
}
LIMITS = {"lr": (1e-5, 1e-1), "batch_size": (8, 512), "width": (4, 128)}


@dataclass
class Job:
    """One training run asked for by one session."""

    session: str
    family: str
    folder: Path  # the job's own folder: data/ (uploads), run/ (the script's run folder)
    command: list[str]
    budget_s: float
    classes: list[int] = field(default_factory=list)
    pictures: int = 0  # own pictures it learns from (0: Fashion-MNIST)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    process: subprocess.Popen | None = None
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    stop_asked: float | None = None
    returncode: int | None = None

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    @property
    def log_path(self) -> Path:
        return self.folder / "log.txt"

    @property
    def state(self) -> str:
        """The job's state: "queued", "running", "done" (a checkpoint was written) or "failed"."""
        if self.process is None:
            return "failed" if self.ended_at else "queued"
        if self.ended_at is None:
            return "running"
        return "done" if self.returncode == 0 and (self.checkpoint_dir / "model.safetensors").is_file() else "failed"

    def live(self) -> list[dict]:
        """The lines of live.jsonl written so far (a half-written last line is left for next time)."""
        path = self.run_dir / "live.jsonl"
        lines = []
        if path.is_file():
            for text in path.read_text(encoding="utf-8").splitlines():
                try:
                    lines.append(json.loads(text))
                except json.JSONDecodeError:
                    break
        return lines

    def snapshots(self) -> list[Path]:
        """The snapshot grids written so far, oldest first."""
        folder = self.run_dir / "snapshots"
        return sorted(folder.glob("step_*.png")) if folder.is_dir() else []

    def evaluating(self) -> bool:
        """Whether training is over and the script is scoring its samples."""
        if not self.log_path.is_file():
            return False
        return any(line.startswith(EVALUATING) for line in self.log_path.read_text(errors="replace").splitlines())

    def failure(self) -> str:
        """The last lines the script printed to stderr, for a failed job (no server paths)."""
        from genmodels.limits import without_server_paths

        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.is_file() else ""
        lines = [line for line in text.splitlines() if line.strip() and "%|" not in line]
        return without_server_paths(" ".join(lines[-2:]))[-400:] or "the training process ended unexpectedly"


def training_command(
    family: str,
    out: Path,
    budget_s: float,
    classes: list[int],
    images: Path | None,
    lr: float,
    batch_size: int,
    width: int,
    device: str = "cpu",
) -> list[str]:
    """The training script's command line for one job (the same script and flags as the CLI)."""
    recipe = RECIPES[family]
    snapshot_s = min(10.0, max(2.0, budget_s / 40))  # about 40 snapshots, every 2 to 10 s
    command = [sys.executable, "-m", f"training.{recipe.script}", "--out", str(out), "--device", device]
    command += ["--minutes", f"{budget_s / 60:.4f}", "--snapshot-seconds", f"{snapshot_s:g}", "--threads", "1"]
    command += ["--eval-samples", str(EVAL_SAMPLES), "--eval-quick", "--lr", f"{lr:g}", "--batch-size", str(batch_size)]
    command += recipe.width_flags(family, width)
    if classes:
        command += ["--classes", ",".join(str(c) for c in classes)]
    if images is not None:
        command += ["--images", str(images)]
    return command


def check_number(name: str, value, low: float, high: float, whole: bool = False) -> float:
    """`value` as a number in [low, high] (whole if asked), or a ValueError naming it."""
    from genmodels.limits import check_float, check_int

    return check_int(name, value, int(low), int(high)) if whole else check_float(name, value, low, high)


class JobRunner:
    """The app's training jobs: at most `slots` running, one per session, each in `root`/<id>
    (`root` is this runner's own: other servers' runners sit beside it)."""

    def __init__(
        self,
        root: Path,
        slots: int = SLOTS,
        max_minutes: float = MAX_MINUTES,
        ttl_s: float = TTL_S,
        device: str = "cpu",
    ):
        self.root = Path(root)
        self.slots = slots
        self.max_minutes = max_minutes
        self.ttl_s = ttl_s
        self.device = device
        self.jobs: dict[str, Job] = {}  # session -> its job
        self.line: list[Job] = []  # waiting, first in line first
        self.on_forget = None  # called with (session, job) when a job is forgotten (the page drops its model)
        self.on_prune = None  # called at each pruning (the page forgets what else it keeps)
        self._lock = threading.RLock()
        self._closed = threading.Event()
        atexit.register(self.close)  # no training process outlives the server
        threading.Thread(target=self._prune_every, args=(min(300.0, ttl_s / 4),), daemon=True).start()
        # Folders of earlier servers (nobody can read them now) go once they are over ttl_s old.
        if self.root.parent.is_dir():
            for old in self.root.parent.iterdir():
                if old.is_dir() and time.time() - old.stat().st_mtime > ttl_s:
                    shutil.rmtree(old, ignore_errors=True)

    @property
    def max_budget_s(self) -> float:
        return self.max_minutes * 60

    def submit(
        self,
        session: str,
        family: str,
        classes: list[str | int] | None = None,
        pictures: list[str | Path] | None = None,
        budget_s: float = 120,
        lr: float | None = None,
        batch_size: int | None = None,
        width: int | None = None,
    ) -> Job:
        """Queue a job for `session` (started at once when a slot is free), or a ValueError saying why not.

        `pictures`: uploaded files (images or zips), copied into the job's folder: they are the data.
        """
        if family not in RECIPES:
            raise ValueError(f"Pick a model family to train: {', '.join(RECIPES)} (got {family!r}).")
        recipe = RECIPES[family]
        budget_s = check_number("Time budget (s)", budget_s, MIN_BUDGET_S, self.max_budget_s)
        lr = check_number("Learning rate", recipe.lr if lr is None else lr, *LIMITS["lr"])
        batch_size = recipe.batch_size if batch_size is None else batch_size
        batch_size = int(check_number("Batch size", batch_size, *LIMITS["batch_size"], True))
        width = int(check_number("Width", recipe.width if width is None else width, *LIMITS["width"], True))
        indices = sorted({class_index(c) for c in classes or []})
        with self._lock:
            self.prune()
            current = self.jobs.get(session)
            if current is not None and current.state in ("queued", "running"):
                raise ValueError("A training run of yours is already under way: stop it first, or wait for it.")
            if current is not None:
                self.forget(session)
            folder = self.root / uuid.uuid4().hex[:16]
            data = None
            if pictures:
                data = folder / "data"
                data.mkdir(parents=True)
                for number, source in enumerate(pictures):
                    source = Path(source)
                    shutil.copyfile(source, data / f"{number:05d}-{source.name[-60:]}")
                indices = []  # own pictures have no classes
            folder.mkdir(parents=True, exist_ok=True)
            command = training_command(
                family, folder / "run", budget_s, indices, data, lr, batch_size, width, self.device
            )
            job = Job(session, family, folder, command, budget_s, indices, len(pictures or []))
            self.jobs[session] = job
            self.line.append(job)
            self._start_waiting()
            return job

    def position(self, job: Job) -> int:
        """0 when `job` is not waiting, else its place in line (1 = next)."""
        with self._lock:
            self.poll()
            return self.line.index(job) + 1 if job in self.line else 0

    def job(self, session: str) -> Job | None:
        """The session's job (after checking on every process)."""
        with self._lock:
            self.poll()
            return self.jobs.get(session)

    def stop(self, session: str) -> Job:
        """Ask the session's job to stop: it saves its checkpoint at its next step and finishes; a job
        still waiting is dropped. A ValueError when there is nothing to stop."""
        with self._lock:
            job = self.job(session)
            if job is None or job.state not in ("queued", "running"):
                raise ValueError("Nothing to stop: no training run of yours is under way.")
            if job in self.line:
                self.line.remove(job)
                job.ended_at = time.time()
                return job
            job.stop_asked = job.stop_asked or time.time()
            job.run_dir.mkdir(parents=True, exist_ok=True)
            (job.run_dir / STOP_FILE).touch()
            return job

    def poll(self) -> None:
        """Notice ended processes, kill ones over time, start waiting jobs in free slots."""
        with self._lock:
            for job in self.jobs.values():
                if job.process is None or job.ended_at is not None:
                    continue
                code = job.process.poll()
                if code is not None:
                    job.returncode, job.ended_at = code, time.time()
                    continue
                # A job past its budget (or its Stop) by more than the evaluation allowance is killed: no job
                # keeps a slot for long.
                deadline = job.started_at + job.budget_s + EVAL_ALLOWANCE_S
                if job.stop_asked:
                    deadline = min(deadline, job.stop_asked + STOP_GRACE_S + EVAL_ALLOWANCE_S)
                if time.time() > deadline:
                    self._kill(job)
            self._start_waiting()

    def _start_waiting(self) -> None:
        running = sum(1 for job in self.jobs.values() if job.state == "running")
        while self.line and running < self.slots:
            job = self.line.pop(0)
            self._start(job)
            running += 1

    def _start(self, job: Job) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_TOKEN", "HUGGING"))}
        env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
        with open(job.log_path, "wb") as log:
            job.process = subprocess.Popen(
                job.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            os.setpriority(os.PRIO_PROCESS, job.process.pid, 19)  # lowest: the page's requests come first
        except (OSError, AttributeError):
            pass
        job.started_at = time.time()
        logger.info("Training job %s (%s) started", job.id, job.family)

    def _kill(self, job: Job) -> None:
        if job.process is not None and job.process.poll() is None:
            try:
                os.killpg(job.process.pid, signal.SIGKILL)
            except OSError:
                pass
            job.process.wait(timeout=10)
        if job.process is not None:
            job.returncode = job.process.returncode
        job.ended_at = job.ended_at or time.time()

    def forget(self, session: str) -> None:
        """End the session's job (killed if still training) and delete its folder."""
        with self._lock:
            job = self.jobs.pop(session, None)
            if job is None:
                return
            if job in self.line:
                self.line.remove(job)
            self._kill(job)
            shutil.rmtree(job.folder, ignore_errors=True)
            if self.on_forget is not None:
                self.on_forget(session, job)
            self._start_waiting()

    def prune(self) -> None:
        """Delete the jobs that ended more than ttl_s ago."""
        with self._lock:
            self.poll()
            old = [s for s, job in self.jobs.items() if job.ended_at and time.time() - job.ended_at > self.ttl_s]
            for session in old:
                self.forget(session)
        if self.on_prune is not None:
            self.on_prune()

    def _prune_every(self, seconds: float) -> None:
        """Prune in the background, so a session that never comes back loses its files in time too."""
        while not self._closed.wait(seconds):
            self.prune()

    def close(self) -> None:
        """Kill every job and delete every folder (the server is shutting down)."""
        self._closed.set()
        with self._lock:
            for session in list(self.jobs):
                self.forget(session)


def checkpoint_zip(job: Job) -> Path:
    """The job's checkpoint folder as a .zip (config.json, model.safetensors, README.md, samples.png)."""
    target = job.folder / f"{job.family}-yours-{job.id}.zip"
    if not target.is_file():
        tmp = target.with_name(".tmp-" + target.name)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(job.checkpoint_dir.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    archive.write(path, f"{job.family}-yours/{path.name}")
        tmp.replace(target)
    return target


def class_names(indices: list[int]) -> str:
    """Class indices as names, for status lines."""
    return ", ".join(CLASS_NAMES[i] for i in indices)
