"""Train tab: a model learns in front of you (live losses and a grid of fixed seeds), then joins the lab.

The training runs in its own process (`training.jobs`); this module only starts it, reads its folder
every second and shows what it finds.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from genmodels.data import CLASS_NAMES, to_tensor
from genmodels.hub import HubRepo, download_checkpoint, push_folder
from genmodels.images import gif_bytes, grid
from genmodels.lab import Lab
from genmodels.limits import ANY_CLASS
from genmodels.pictures import load_pictures
from genmodels.registry import (
    TRAINABLE,
    YOURS_PREFIX,
    check_user_checkpoint,
    entry_of,
    unpack_user_checkpoint,
)
from training.jobs import LIMITS, MIN_BUDGET_S, RECIPES, Job, JobRunner, checkpoint_zip, class_names

from . import texts
from .components import class_choices, friendly
from .files import OUTPUT_DIR, OutputStore

POLL_S = 1.0  # seconds between two looks at a running job's folder
FIRST_POLL_S = 0.2  # ...until its first snapshot is on screen: the noise it starts from, at once
PREVIEW_TILES = 256  # own pictures shown before training (the first ones; the count says how many in all)
DEFAULT_BUDGET_S = 120
SERIES = {  # what each family's plot shows, from live.jsonl
    "vae": ("reconstruction", "kl"),
    "dcgan": ("loss_d", "loss_g", "d_real", "d_fake"),
    "flow": ("loss",),
}
SERIES_NAMES = {
    "reconstruction": "reconstruction (−log p(x|z))",
    "kl": "KL(q(z|x) ‖ p(z))",
    "loss_d": "D's loss",
    "loss_g": "G's loss",
    "d_real": "D(x)",
    "d_fake": "D(G(z))",
    "loss": "flow-matching loss",
}


class Trainer:
    """The tab's state on the server: the job runner, and the models each session trained or brought."""

    def __init__(self, lab: Lab, store: OutputStore, runner: JobRunner, pickers: int = 4):
        self.lab = lab
        self.store = store
        self.runner = runner
        self.pickers = pickers  # Generate's, Interpolate's, Studio's and Denoise's model dropdowns
        self.owned: dict[str, dict[str, float]] = {}  # session -> {name of its model in the lab: when added}
        self.imports = runner.root / "imports"  # checkpoints users brought, a folder per session
        self._lock = threading.Lock()
        runner.on_forget = self.job_forgotten
        runner.on_prune = self.prune

    def own(self, session: str, name: str, job: Job | None = None) -> list:
        """Record that `session` has model `name`; return the updates of the session's pickers: Generate's
        set to it, the others offering it where they take its family (Denoise: flow models only), and
        Generate's class picker set to what a conditional model `job` trained learned (`first_class`)."""
        with self._lock:
            self.owned.setdefault(session, {})[name] = time.time()
            names = self.lab.generative() + list(self.owned[session])
        updates = [gr.update(choices=names, value=name)] + [gr.update(choices=names)] * (self.pickers - 2)
        flows = [n for n in names if entry_of(n).denoises]
        updates.append(gr.update(choices=flows) if entry_of(name).denoises else gr.skip())
        label = first_class(name, job)
        return updates + [gr.skip() if label is None else gr.update(choices=class_choices(name), value=label)]

    def job_forgotten(self, session: str, job: Job) -> None:
        """A job's folder is gone: so is the model it trained."""
        self.drop(session, f"{YOURS_PREFIX}{job.family}-{job.id}")

    def drop(self, session: str, name: str) -> None:
        with self._lock:
            self.owned.get(session, {}).pop(name, None)
        self.lab.drop_yours(name)

    def session_folder(self, session: str) -> Path:
        """The folder of the checkpoints `session` brought (named by a digest: session ids stay private)."""
        return self.imports / hashlib.sha256(session.encode()).hexdigest()[:16]

    def session_ended(self, session: str) -> None:
        """Forget a session: its job, its models and its files."""
        self.runner.forget(session)
        with self._lock:
            names = list(self.owned.pop(session, {}))
        for name in names:
            self.lab.drop_yours(name)
        shutil.rmtree(self.session_folder(session), ignore_errors=True)

    def prune(self) -> None:
        """Forget brought checkpoints older than the runner's time to live (API clients never say goodbye)."""
        now = time.time()
        with self._lock:
            stale = [
                (session, name)
                for session, names in self.owned.items()
                for name, added in names.items()
                if now - added > self.runner.ttl_s and session not in self.runner.jobs
            ]
        for session, name in stale:
            self.drop(session, name)
            shutil.rmtree(self.session_folder(session) / name.rsplit("-", 1)[-1], ignore_errors=True)


def session_of(request: gr.Request | None) -> str:
    """The browser tab's or API client's session, which owns at most one job."""
    session = getattr(request, "session_hash", None)
    if not session:
        raise ValueError("Training needs a session: connect through the page or a Gradio client.")
    return session


def upload_paths(images) -> list[str]:
    """Uploaded files (gr.File values: paths or file objects) as paths."""
    if not images:
        return []
    items = images if isinstance(images, list) else [images]
    return [str(getattr(item, "path", None) or getattr(item, "name", None) or item) for item in items]


def picture_grid(images: np.ndarray) -> np.ndarray:
    """Up to PREVIEW_TILES prepared pictures (N, 28, 28) as one grid image."""
    shown = images[:PREVIEW_TILES]
    return grid(to_tensor(shown), nrow=min(16, len(shown)))


@friendly
def preview(images):
    """The pictures as the model will see them (28x28 each), and a sentence with the count."""
    paths = upload_paths(images)
    if not paths:
        return None, "No pictures: the model learns from Fashion-MNIST."
    pictures = load_pictures(paths)
    shown = f" (the first {PREVIEW_TILES} shown)" if len(pictures.images) > PREVIEW_TILES else ""
    return picture_grid(pictures.images), f"The model will learn from {pictures.summary()}{shown}"


def recipe_defaults(family: str):
    """The knobs at the chosen family's recipe defaults."""
    recipe = RECIPES.get(family)
    if recipe is None:
        return gr.skip(), gr.skip(), gr.skip()
    return recipe.lr, recipe.batch_size, recipe.width


def curves(job: Job) -> pd.DataFrame:
    """The live losses in long form (elapsed_s, value, series) for the plot."""
    rows = []
    for line in job.live():
        for key in SERIES[job.family]:
            if key in line:
                rows.append({"elapsed_s": line["elapsed_s"], "value": line[key], "series": SERIES_NAMES[key]})
    frame = pd.DataFrame(rows, columns=["elapsed_s", "value", "series"])
    return frame.astype({"elapsed_s": float, "value": float, "series": str})  # numbers even when empty


def first_class(name: str, job: Job | None) -> str | None:
    """The class Generate opens a user's conditional model on: "any class" when it learned from pictures
    without classes, else the first class it learned (None: the picker's own, T-shirt/top)."""
    if job is None or not entry_of(name).conditional:
        return None
    if job.pictures:
        return ANY_CLASS
    return CLASS_NAMES[job.classes[0]] if job.classes else None


def data_text(job: Job) -> str:
    """What the job learns from, in words."""
    if job.pictures:
        return "your pictures"
    return f"Fashion-MNIST ({class_names(job.classes) if job.classes else 'all ten classes'})"


def progress_text(runner: JobRunner, job: Job) -> str:
    """The status line of a job that has not ended."""
    place = runner.position(job)
    if place:
        return f"⏳ Waiting in line: {place - 1} run(s) ahead of yours. It starts as soon as a slot is free."
    lines = job.live()
    last = lines[-1] if lines else {}
    text = f"🏃 Training **{job.family}** on {data_text(job)}: {last.get('elapsed_s', 0):.0f} s of {job.budget_s:.0f} s"
    text += f" · step {last.get('step', 0)}"
    if "images_per_s" in last:
        text += f" · {last['images_per_s']:.0f} images/s"
    if job.evaluating():
        text += " · training done: scoring 1,000 samples"
    elif job.stop_asked:
        text += " · stopping: saving the checkpoint"
    return text


def metrics_text(lab: Lab, name: str, job: Job) -> str:
    """The finished model's quick quality numbers."""
    metrics = lab.metrics.get(name, {})
    if "FIDc" not in metrics:
        return ""
    against = "your pictures" if job.pictures else "the test set" + (" of its classes" if job.classes else "")
    return f" FIDc **{metrics['FIDc']:.2f}** (1,000 samples against {against}; lower is better)."


def newest_snapshot(job: Job) -> str | None:
    """The path of the newest snapshot grid, if any."""
    found = job.snapshots()
    return str(found[-1]) if found else None


@friendly
async def train(
    trainer: Trainer,
    family: str = "vae",
    classes: list[str] | None = None,
    images: list | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    lr: float | None = None,
    batch_size: int | None = None,
    width: int | None = None,
    request: gr.Request = None,
):
    """Train a model from scratch, live: a VAE, DCGAN or flow model on Fashion-MNIST (all or some classes)
    or on your own pictures, for a time budget; then it joins the lab as "yours".

    Streams updates (status line, loss curves, the grid of fixed seeds from the current weights) about
    every second; the last update adds the checkpoint as a .zip (config.json, model.safetensors, model
    card) and the model's name in Generate's picker. One run per session; /train_stop ends it early.

    Args:
        family: what to train: "vae", "dcgan" or "flow".
        classes: Fashion-MNIST classes to learn (e.g. ["Trouser", "Bag"]); empty means all ten.
        images: your own pictures (image files or one .zip, at least 16); when given, they are the data.
        budget_s: training time in seconds, from 15 up to the server's cap (default 120).
        lr: learning rate (default: the recipe's).
        batch_size: images per step (default: the recipe's).
        width: channels of the first layer; the others scale with it (default: the recipe's).
    """
    # A coroutine that sleeps between looks: it holds no worker thread while the job trains.
    lab, runner, pickers = trainer.lab, trainer.runner, trainer.pickers
    session = session_of(request)
    paths = upload_paths(images)
    if paths:  # refuse unusable uploads here, with the reason, before a job exists
        await asyncio.to_thread(load_pictures, paths)
    job = await asyncio.to_thread(runner.submit, session, family, classes, paths, budget_s, lr, batch_size, width)
    finished = False
    try:
        shown = None
        while job.state in ("queued", "running"):
            snapshot = newest_snapshot(job)
            update = gr.skip() if snapshot == shown else snapshot
            shown = snapshot
            yield progress_text(runner, job), curves(job), update, gr.skip(), *[gr.skip()] * (pickers + 1)
            await asyncio.sleep(POLL_S if shown else FIRST_POLL_S)
            runner.poll()
        finished = True
    finally:
        if not finished and runner.job(session) is job and job.state in ("queued", "running"):
            runner.stop(session)  # the client went away: the run ends cleanly, and its files with the session
    if job.state != "done":
        if job.process is None:
            raise ValueError("Your training run was stopped before it started.")
        raise ValueError(f"Training failed: {job.failure()}")
    name = f"{YOURS_PREFIX}{family}-{job.id}"
    await asyncio.to_thread(lab.add_yours, name, job.checkpoint_dir)
    updates = trainer.own(session, name, job)
    status = (
        f"✅ Done: **{family}** trained for {job.live()[-1].get('elapsed_s', 0) if job.live() else 0:.0f} s on "
        f"{data_text(job)}.{metrics_text(lab, name, job)} It is in the model pickers of Generate, Interpolate "
        f"and Studio{' and Denoise' if family == 'flow' else ''} as **{name}**; download it below."
    )
    yield status, curves(job), newest_snapshot(job), str(checkpoint_zip(job)), *updates


@friendly
def train_stop(trainer: Trainer, request: gr.Request = None) -> str:
    """Stop your training run: it saves its checkpoint where it is, scores it, and joins the lab as if its
    budget had run out (a run still waiting in line is dropped)."""
    job = trainer.runner.stop(session_of(request))
    return "Stopping: the checkpoint is saved at the next step." if job.process else "Your waiting run was dropped."


def session_job(trainer: Trainer, request: gr.Request | None) -> Job | None:
    """The job of the request's session, if any."""
    session = getattr(request, "session_hash", None)
    return trainer.runner.job(session) if session else None


def timeline(trainer: Trainer, request: gr.Request = None):
    """After a run: the scrubber over its snapshots (at the last) and the timeline as a GIF."""
    job = session_job(trainer, request)
    frames = job.snapshots() if job else []
    if not frames:
        return gr.update(visible=False), None, None
    gif = trainer.store.save(
        gif_bytes([np.asarray(Image.open(path).convert("L")) for path in frames], 150, False), ".gif"
    )
    slider = gr.update(minimum=0, maximum=len(frames) - 1, value=len(frames) - 1, visible=True)
    return slider, str(frames[-1]), gif


def scrub(trainer: Trainer, index: float, request: gr.Request = None):
    """The snapshot at `index` on the training-time scrubber, with its time and step."""
    job = session_job(trainer, request)
    frames = job.snapshots() if job else []
    if not frames:
        return None, ""
    index = int(min(max(index, 0), len(frames) - 1))
    line = next((item for item in job.live() if item.get("snapshot") == frames[index].name), {})
    return str(frames[index]), f"After {line.get('elapsed_s', 0):.0f} s, step {line.get('step', 0)}."


def ended(trainer: Trainer, request: gr.Request = None) -> None:
    """The browser tab closed: its job stops and its files and models go."""
    session = getattr(request, "session_hash", None)
    if session:
        trainer.session_ended(session)


@friendly
def train_push(trainer: Trainer, repo_id: str, token: str, request: gr.Request = None) -> str:
    """Push the model you trained to a Hugging Face Hub model repo (config.json, model.safetensors, card,
    sample grid). The token is used for this upload only: never logged, stored or shown.

    Args:
        repo_id: the Hub model repo to create or update, OWNER/NAME.
        token: a Hugging Face access token with write permission.
    """
    job = session_job(trainer, request)
    if job is None or job.state != "done":
        raise ValueError("Train a model first: there is no finished run of yours to push.")
    if not isinstance(token, str) or not token.strip():
        raise ValueError("Paste a Hugging Face access token with write permission.")
    token = token.strip()
    try:
        url = push_folder(job.checkpoint_dir, (repo_id or "").strip(), token=token)
    except Exception as exc:  # never echo the token, whatever the Hub's message holds
        raise ValueError(str(exc).replace(token, "[token]")) from None
    return f"✅ Pushed to the Hub: {url}"


@friendly
def load_checkpoint(trainer: Trainer, checkpoint=None, repo_id: str = "", request: gr.Request = None):
    """Bring your own model into the lab for this session: a checkpoint .zip (config.json and
    model.safetensors of a vae, dcgan or flow, as the Train tab downloads them) or a Hub repo id.
    Pickled weights are never loaded.

    Args:
        checkpoint: a .zip of a checkpoint folder.
        repo_id: or a Hub model repo, OWNER/NAME[@REVISION].
    """
    session = session_of(request)
    folder = trainer.session_folder(session) / uuid.uuid4().hex[:12]
    paths = upload_paths(checkpoint)
    try:
        if paths:
            source = unpack_user_checkpoint(paths[0], folder)
            where = "your zip"
        elif repo_id and repo_id.strip():
            source = download_checkpoint(HubRepo.parse(repo_id))
            where = f"the Hub repo {repo_id.strip()}"
        else:
            raise ValueError("Upload a checkpoint .zip or give a Hub repo id (OWNER/NAME) to load.")
        family = check_user_checkpoint(source)
        name = f"{YOURS_PREFIX}{family}-{folder.name}"
        try:
            trainer.lab.add_yours(name, source)
        except (ValueError, OSError, RuntimeError) as exc:
            raise ValueError(f"The {family} checkpoint from {where} does not load: {exc}") from exc
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    status = (
        f"✅ Loaded the {family} from {where} as **{name}**: it is in the model pickers of Generate, "
        f"Interpolate and Studio{' and Denoise' if family == 'flow' else ''}."
    )
    return status, *trainer.own(session, name)


def render(
    lab: Lab,
    store: OutputStore,
    demo: gr.Blocks,
    pickers: list[gr.Dropdown],
    class_picker: gr.Dropdown,
    runner: JobRunner,
) -> None:
    """Lay out the Train tab and wire its events; `pickers` are the model dropdowns a user's model joins:
    Generate's (which also selects it), Interpolate's, Studio's and Denoise's (flow models only), in order;
    `class_picker` is Generate's class, set to what the model learned (`first_class`)."""
    from .components import bind

    trainer = Trainer(lab, store, runner, len(pickers))
    gr.Markdown(texts.TRAIN)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            family = gr.Radio(list(TRAINABLE), value="vae", label="Model family", elem_id="train-family")
            classes = gr.CheckboxGroup(
                list(CLASS_NAMES), value=[], label="Classes (none ticked: all ten)", elem_id="train-classes"
            )
            images = gr.File(
                file_count="multiple",
                file_types=["image", ".zip"],
                label="Or your own pictures (at least 16 image files, or one .zip)",
                elem_id="train-images",
            )
            seen = gr.Image(label="What the model will see", visible=True, height=200, elem_id="train-preview")
            count = gr.Markdown("No pictures: the model learns from Fashion-MNIST.", elem_id="train-count")
            budget = gr.Slider(
                MIN_BUDGET_S,
                runner.max_budget_s,
                value=min(DEFAULT_BUDGET_S, runner.max_budget_s),
                step=5,
                label="Time budget (s)",
                elem_id="train-budget",
            )
            with gr.Accordion("Knobs (empty: the recipe's defaults)", open=False):
                # Empty by default, so an API call that leaves them out gets its family's recipe, not the
                # numbers of whichever family the page shows; picking a family fills in its recipe.
                defaults = "; ".join(
                    f"{name}: lr {r.lr:g}, batch {r.batch_size}, width {r.width}" for name, r in RECIPES.items()
                )
                lr = gr.Number(
                    None, label="Learning rate", minimum=LIMITS["lr"][0], maximum=LIMITS["lr"][1], info=defaults
                )
                low, high = LIMITS["batch_size"]
                batch_size = gr.Number(None, label="Batch size", precision=0, minimum=low, maximum=high)
                low, high = LIMITS["width"]
                width = gr.Number(None, label="Width (first layer's channels)", precision=0, minimum=low, maximum=high)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                halt = gr.Button("Stop", variant="stop", elem_id="train-stop")
        with gr.Column(scale=2):
            status = gr.Markdown("Pick a family and press Start.", elem_id="train-status")
            with gr.Row():
                plot = gr.LinePlot(
                    x="elapsed_s",
                    y="value",
                    color="series",
                    x_title="seconds",
                    y_title="",
                    height=300,
                    label="Losses",
                    elem_id="train-plot",
                )
                snapshot = gr.Image(
                    label="Fixed seeds, from the current weights",
                    type="filepath",
                    format="png",
                    elem_id="train-grid",
                    elem_classes="enlarge",
                    height=300,
                )
            download = gr.File(label="Your checkpoint (.zip)", elem_id="train-download")
            with gr.Accordion("Push it to the Hugging Face Hub", open=False):
                repo = gr.Textbox(label="Model repo (OWNER/NAME)", elem_id="train-repo")
                token = gr.Textbox(label="Access token (write)", type="password", elem_id="train-token")
                push_button = gr.Button("Push", size="sm", elem_id="train-push")
            with gr.Accordion("Bring your own model (a checkpoint .zip or a Hub repo)", open=False):
                brought = gr.File(file_types=[".zip"], label="Checkpoint .zip", elem_id="train-bring")
                brought_repo = gr.Textbox(label="Or a Hub repo (OWNER/NAME[@REVISION])", elem_id="train-bring-repo")
                load_button = gr.Button("Load into the lab", size="sm", elem_id="train-load")
            scrubber = gr.Slider(
                0,
                1,
                value=0,
                step=1,
                label="Training time: scrub through the snapshots",
                visible=False,
                elem_id="train-scrubber",
            )
            with gr.Row():
                frame = gr.Image(label="Snapshot", type="filepath", height=260, elem_id="train-frame")
                with gr.Column():
                    frame_info = gr.Markdown(elem_id="train-frame-info")
                    gif = gr.Image(label="Timeline (GIF)", type="filepath", height=200, elem_id="train-gif")

    images.change(preview, images, [seen, count], api_visibility="private")
    family.change(recipe_defaults, family, [lr, batch_size, width], api_visibility="private")
    inputs = [family, classes, images, budget, lr, batch_size, width]
    started = start.click(
        bind(train, trainer),
        inputs,
        [status, plot, snapshot, download, *pickers, class_picker],
        api_name="train",
        concurrency_limit=None,
        show_progress="minimal",
    )
    started.then(bind(timeline, trainer), None, [scrubber, frame, gif], api_visibility="private")
    halt.click(bind(train_stop, trainer), None, status, api_name="train_stop", concurrency_limit=None, queue=False)
    push_button.click(bind(train_push, trainer), [repo, token], status, api_name="train_push")
    load_button.click(
        bind(load_checkpoint, trainer),
        [brought, brought_repo],
        [status, *pickers, class_picker],
        api_name="load_checkpoint",
    )
    scrubber.input(bind(scrub, trainer), scrubber, [frame, frame_info], api_visibility="private", queue=False)
    demo.unload(bind(ended, trainer))


def runner_for(lab: Lab, slots: int, max_minutes: float) -> JobRunner:
    """The job runner of one page: its folder under the output folder, training on the lab's device."""
    import uuid

    root = OUTPUT_DIR / "train" / uuid.uuid4().hex[:12]
    return JobRunner(root, slots=slots, max_minutes=max_minutes, device=lab.device.type)
