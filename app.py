"""Latent Lab: explore the latent spaces of small generative models of Fashion-MNIST in a browser.

    python app.py                          # http://127.0.0.1:7860, bundled checkpoints, best device
    python app.py --device cpu --port 8000
    python app.py --share                  # also a public *.gradio.live link
    python app.py --hub-repo dcgan=OWNER/NAME@REVISION   # a checkpoint from the Hugging Face Hub

On a Space, set GENMODELS_HUB_REPOS="dcgan=OWNER/NAME@REVISION vae=..." instead of --hub-repo.

This file only lays out the page and wires events; every computation lives in `genmodels`
(`genmodels.lab.Lab` for the actions, `genmodels.images` / `genmodels.preprocess` for pictures).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import functools
import hashlib
import json
import logging
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from genmodels.data import CLASS_NAMES, to_uint8
from genmodels.device import DEVICE_CHOICES, resolve_device
from genmodels.editing import EditParams
from genmodels.images import (
    CLASS_COLOURS,
    fit_for_display,
    gif_bytes,
    grid,
    heatmap,
    pixel_to_point,
    png_bytes,
    row,
    scatter,
    upscale,
)
from genmodels.lab import (
    MAX_IMAGES,
    MAX_MOVE,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_TRUNCATION,
    Lab,
    check_float,
    check_int,
    without_server_paths,
)
from genmodels.latent import MAX_SEED
from genmodels.preprocess import MAX_FILE_BYTES, MAX_PIXELS, Prepared, load_image, prepare_mask, prepare_upload
from genmodels.registry import MODELS, parse_model_repos
from ui.guard import GuardedBlocks

logger = logging.getLogger("app")

# Gradio summarises its per-event analytics with pandas after every event, over up to 10,000
# records: under load that work grows with each request. Summarise every 500 events over the last
# 1,000 instead (Gradio's own settings, read when the queue is made; the environment overrides them).
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

GIF_ZOOM = 8  # GIF frames are enlarged to 224x224 (nearest-neighbour): a GIF is viewed outside the page
# Model outputs are sent at their true 28x28 resolution (small to encode and honest through the API);
# the browser enlarges them without smoothing.
CSS = """
img { image-rendering: pixelated; }
.enlarge img { width: 100% !important; height: 100% !important; object-fit: contain; }
"""
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "genmodels" / "examples"
OUTPUT_DIR = Path(tempfile.gettempdir()) / "genmodels-app"
MAX_OUTPUT_FILES = 500  # downloadable files of each kind kept on disk; the oldest go first
OUTPUT_MIN_AGE_S = 600  # ...but none younger than this: Gradio may still be copying it
PRUNE_EVERY = 20  # writes between two prunings (each scans the folder), so at most 20 files over
QUEUE_SIZE = 64  # requests waiting at most; more get "queue full" at once rather than a long wait
MAX_THREADS = 4  # requests computed at once, over all events together (one shared first-come line)
STATUS_UPDATE_S = 1.0  # seconds between the queue-position messages to waiting clients
SEED_RANGE = MAX_SEED - MAX_IMAGES
# Files the server may hand out: only what Gradio itself created (uploads, outputs moved to its cache);
# never the checkpoints, training runs, the repository's history or the Hub's local cache and token.
ALLOWED_PATHS: list[str] = []
BLOCKED_PATHS = [
    str(ROOT / "checkpoints"),
    str(ROOT / "runs"),
    str(ROOT / ".git"),
    str(Path.home() / ".cache" / "huggingface"),
]
MMAP_THRESHOLD = 64 * 1024  # bytes; see release_freed_memory()
_output_lock = threading.Lock()  # one pruning of OUTPUT_DIR at a time
_output_writes: dict[str, int] = {}  # files written per suffix, to prune every PRUNE_EVERY writes
LAUNCH_OPTIONS = {  # main() and the tests
    "css": CSS,
    "max_file_size": MAX_FILE_BYTES,
    "show_error": True,
    # Worker threads for all events together: a few per core. Each thread that runs the models keeps
    # its own oneDNN kernel caches, so Gradio's default of 40 costs memory and buys nothing on 2 cores.
    "max_threads": MAX_THREADS,
    "allowed_paths": ALLOWED_PATHS,
    "blocked_paths": BLOCKED_PATHS,
}

INTRO = f"""
# Latent Lab · Fashion-MNIST
Generate clothes from random seeds, push your own pictures through a VAE and back, walk between
latents and edit images, with small models trained on Fashion-MNIST's 60,000 28x28 images.
Same seed and settings give the same pixels. Uploads: PNG, JPEG, WebP, BMP, TIFF or GIF,
at most {MAX_FILE_BYTES // 2**20} MB and {MAX_PIXELS:,} pixels.
"""

GENERATE_TEXT = """
**What you see.** Each image is a decoder's output for a random latent vector *z*; image *i* uses seed
*seed + i*. The **DCGAN** was trained as a two-player game, min<sub>G</sub> max<sub>D</sub> E[log D(x)] +
E[log(1 − D(G(z)))]: the discriminator D learns to tell real from generated images while the generator G
learns to fool it; *z* is standard normal. The **cGAN** plays the same game with a class label given to
both players, so you pick the class. The **VAE** decodes *z* drawn from a mixture of Gaussians fitted to
where its encoder places real images, which avoids the empty regions of its N(0, I) prior.
**Truncation** (GANs) redraws latent components larger than the threshold and **temperature** (VAE)
narrows the draw: both trade variety for cleaner, more typical images.
"""

ROUNDTRIP_TEXT = """
**What you see.** The VAE's encoder maps your image to a Gaussian *q(z|x)* over a small latent space
(its mean and standard deviation per dimension are plotted below) and the decoder maps the mean back to
pixels. Training maximised the ELBO, log p(x) ≥ E<sub>q(z|x)</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z)):
reconstruct well, but keep *q* close to the prior. What the model cannot represent shows up in the error
map; samples from *q(z|x)* show how sure the encoder is.
"""

INTERPOLATE_TEXT = """
**What you see.** A path between two latents, decoded step by step. Latents drawn from a
high-dimensional Gaussian lie near a sphere of radius √d, so the straight line (**lerp**) passes
through the low-probability inside where images wash out; **slerp** follows the sphere instead
(Shoemake's spherical interpolation, as in the DCGAN and VAE literature). With the VAE an endpoint can
also be your own image, encoded to its posterior mean.
"""

EDIT_TEXT = """
**What you see.** Classic pixel edits (crop, rotate, flip, affine: scale, translate, shear) applied to
your image after it is brought to 28x28, with a live preview. **Projecting onto the model** encodes the
edited image with the VAE and decodes it: the result is the nearest image the model knows how to make,
so edits it has never seen (an upside-down shoe) are pulled back towards the data.
"""

STUDIO_TEXT = """
**What you see.** Bring a latent into the studio (a seed, or **your own image**, inverted: the VAE
encodes it; a GAN has no encoder, so *z* is found by gradient descent on the pixel error from 16
seeded starts), then move it. **Class directions** point from the average latent to where the
classifier (GANs, on generated samples) or the labels (VAE, on training images) put a class; list
classes to **keep fixed** and the direction is made orthogonal to theirs (InterFaceGAN's conditional
manipulation). **Principal directions** are the main axes of variation (GANSpace: PCA of the GAN's
first layer, carried back to *z*; for the VAE, PCA of its posterior means). Sliders are absolute
offsets from the latent you brought in. Every result (also of A − B + C and masked regeneration)
is kept: **Undo** steps back, and the slider shows before and after.
"""

MAP_TEXT = """
**What you see.** The VAE's encoder places each of the 10,000 test images at its posterior mean; PCA
flattens those latents to two dimensions, coloured by class. **Click anywhere**: that point is mapped
back into latent space (the two map coordinates along the two principal axes, every other direction at
its average) and decoded, next to the real test images mapped nearest to it.
"""


# --- glue: errors, pictures and files -----------------------------------------------------------


class Upload(gr.Image):
    """gr.Image that hands the handler the uploaded file untouched (a path, or bytes for a data URL).

    The stock component opens the file with PIL before the handler runs, so a non-image or a
    decompression bomb fails inside Gradio with a technical message; `genmodels.preprocess`
    decodes it instead, with limits and plain errors.
    """

    is_template = True  # rendered by the frontend's ordinary Image component

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path:
            return payload.path
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[1])
        raise gr.Error("The upload did not arrive; please try again.")


def image_input(label: str, **kwargs) -> Upload:
    """An image input for uploads and pasted images (Gradio reads a component's config from its
    constructor's signature, so the shared settings are passed here rather than by a new __init__)."""
    return Upload(type="filepath", image_mode=None, sources=["upload", "clipboard"], label=label, **kwargs)


def friendly(fn):
    """Turn the library's ValueError into a gr.Error the page shows; the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise gr.Error(without_server_paths(str(exc))) from exc

    return wrapper


def save_output(data: bytes, suffix: str) -> str:
    """Write a downloadable file named by its content hash; keep at most MAX_OUTPUT_FILES of a kind.

    Gradio copies the returned path into its cache after the function returns, so a file handed out
    must survive until then, whatever other requests (or other servers sharing the folder) do:
    - each write goes to its own temporary name, then replaces the final name atomically, so two
      requests making the same picture never trip over each other's half-written file;
    - an existing file is rewritten too, which makes it the newest and last in line for eviction;
    - eviction only removes files older than OUTPUT_MIN_AGE_S, never one just handed out.
    """
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    with tempfile.NamedTemporaryFile(dir=OUTPUT_DIR, prefix=".tmp-", suffix=suffix, delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)
    with _output_lock:
        _output_writes[suffix] = _output_writes.get(suffix, 0) + 1
        if (_output_writes[suffix] - 1) % PRUNE_EVERY == 0:  # the first write, then every PRUNE_EVERY
            prune_outputs(suffix)
    return str(path)


def prune_outputs(suffix: str) -> None:
    """Delete the oldest `suffix` files beyond MAX_OUTPUT_FILES, sparing any younger than OUTPUT_MIN_AGE_S."""
    entries = []
    for entry in os.scandir(OUTPUT_DIR):
        if entry.name.endswith(suffix) and not entry.name.startswith("."):
            try:
                entries.append((entry.stat().st_mtime, entry.path))
            except FileNotFoundError:  # removed meanwhile by another server sharing the folder
                continue
    if len(entries) <= MAX_OUTPUT_FILES:
        return
    entries.sort()
    oldest_kept = time.time() - OUTPUT_MIN_AGE_S
    for mtime, name in entries[: len(entries) - MAX_OUTPUT_FILES]:
        if mtime < oldest_kept:
            Path(name).unlink(missing_ok=True)


def read_upload(image, what: str = "an image") -> Prepared:
    """The 28x28 preparation of an upload (file path) or a drawing (Sketchpad value)."""
    if isinstance(image, dict):  # Sketchpad / ImageEditor value: the flattened layers
        image = image.get("composite")
    if image is None:
        raise ValueError(f"Upload or draw {what} first.")
    return prepare_upload(image)


# --- handlers: one per tab's main action (module level, so tests can call them) -------------------


@friendly
def generate(
    model: str,
    seed: int,
    num: int = 16,
    truncation: float = 0.0,
    temperature: float = 1.0,
    compare: bool = False,
    label: str = CLASS_NAMES[0],
):
    """Generate `num` images from seeds seed..seed+num-1 with `model`: a grid, its PNG, and a comparison."""
    tiles = grid(lab.generate(model, seed, num, truncation, temperature, label))
    comparison = []
    if compare:
        for name in lab.generative():
            comparison.append((grid(lab.generate(name, seed, num, truncation, temperature, label)), name))
    return tiles, save_output(png_bytes(tiles), ".png"), gr.update(value=comparison, visible=compare)


@friendly
def singles(
    model: str,
    seed: int,
    num: int = 16,
    truncation: float = 0.0,
    temperature: float = 1.0,
    compare: bool = False,
    label: str = CLASS_NAMES[0],
):
    """The images of `generate` one by one, captioned with their seeds (the page's gallery).

    A second event after `generate`, so the API call returns the grid without encoding each image.
    """
    images = lab.generate(model, seed, num, truncation, temperature, label)
    return [(image, f"seed {int(seed) + i}") for i, image in enumerate(to_uint8_list(images))]


@friendly
def roundtrip(image: str | bytes | None, sketch: dict | None = None, seed: int = 0):
    """Reconstruct an uploaded image (or, without one, a drawing) with the VAE."""
    prepared = read_upload(image if image is not None else sketch, "an image (or draw one)")
    result = lab.roundtrip(prepared.image, seed)
    steps = [(fit_for_display(step), name) for name, step in prepared.steps]
    slider = (result.input, result.reconstruction)
    summary = (
        f"**Reconstruction error:** MSE {result.mse:.4f} (pixels in [0, 1]) · PSNR {result.psnr:.1f} dB · "
        f"latent dimensions: {len(result.mu)}"
    )
    plot = posterior_frame(result.mu, result.std)
    samples = [(sample, f"z ~ q(z|x) #{i + 1}") for i, sample in enumerate(result.samples)]
    return steps, slider, heatmap(result.error), summary, plot, samples


@friendly
def interpolate(
    model: str,
    seed_a: int,
    seed_b: int,
    steps: int = 8,
    method: str = "slerp",
    image_a: str | bytes | None = None,
    image_b: str | bytes | None = None,
    label: str = CLASS_NAMES[0],
):
    """Decode `steps` latents between two endpoints (seeds, or images with the VAE)."""
    a = read_upload(image_a).image if image_a is not None else None
    b = read_upload(image_b).image if image_b is not None else None
    frames = to_uint8_list(lab.interpolate(model, seed_a, seed_b, steps, method, a, b, label))
    strip = row(frames)
    gif = save_output(gif_bytes([upscale(frame, GIF_ZOOM) for frame in frames]), ".gif")
    return strip, gif, gif


@friendly
def edit(
    image: str | bytes | None,
    crop: float = 1.0,
    angle: float = 0.0,
    flip_h: bool = False,
    flip_v: bool = False,
    scale: float = 1.0,
    translate_x: float = 0.0,
    translate_y: float = 0.0,
    shear_x: float = 0.0,
    shear_y: float = 0.0,
):
    """Apply classic edits to the uploaded image and project the result onto the VAE."""
    prepared = read_upload(image).image
    params = EditParams(crop, angle, bool(flip_h), bool(flip_v), scale, translate_x, translate_y, shear_x, shear_y)
    edited, projected = lab.edit(prepared, params)
    return prepared, edited, (edited, projected)


# --- the latent studio ----------------------------------------------------------------------------


def studio_state(model: str, z: torch.Tensor, label: str, source: str) -> dict:
    """What the studio remembers about the latent brought in (per browser session)."""
    return {"model": model, "z": z.detach().cpu(), "label": label, "source": source}


@friendly
def studio_invert(image, model: str = "vae", label: str = CLASS_NAMES[0], history=None, progress=gr.Progress()):
    """Invert an uploaded image into `model`'s latent space: reconstruction, PSNR to it and time taken."""
    prepared = read_upload(image).image
    result = lab.invert(model, prepared, label=label, progress=lambda f: progress(f, desc="Inverting"))
    reconstruction = to_uint8_list(result.image[None])[0]
    info = f"**Inverted into {model}:** PSNR {result.psnr:.1f} dB to your image, in {result.seconds:.2f} s."
    state = studio_state(model, result.z, label, "your image")
    return (prepared, reconstruction), info, state, [*(history or []), (prepared, reconstruction)]


@friendly
def studio_seed(model: str, seed: int, label: str = CLASS_NAMES[0], history=None):
    """Bring seed `seed`'s latent into the studio."""
    z = lab.latent(model, check_int("Seed", seed, 0, SEED_RANGE), label)
    image = to_uint8_list(lab.decode(model, z[None], label))[0]
    state = studio_state(model, z, label, f"seed {int(seed)}")
    return (image, image), f"**Seed {int(seed)}** in {model}.", state, [*(history or []), (image, image)]


@friendly
def studio_move(
    model: str,
    seed: int = 0,
    target: str = CLASS_NAMES[0],
    amount: float = 0.0,
    keep: list[str] | None = None,
    pc1: float = 0.0,
    pc2: float = 0.0,
    pc3: float = 0.0,
    pc4: float = 0.0,
    label: str = CLASS_NAMES[0],
    base: dict | None = None,
    history=None,
):
    """Move the studio's latent (or, without one, seed `seed`'s) along a class and principal directions."""
    if base is None or base["model"] != model:
        base = studio_state(model, lab.latent(model, check_int("Seed", seed, 0, SEED_RANGE), label), label, "seed")
    z = base["z"]
    moved = lab.move(model, z[None], target, amount, keep or [], [pc1, pc2, pc3, pc4])
    before, after = to_uint8_list(lab.decode(model, torch.cat([z[None].to(lab.device), moved]), base["label"]))
    found = lab.directions(model)
    shares = ", ".join(f"{share:.0%}" for share in found.explained[:4].tolist())
    info = (
        f"From {base['source']}: {amount:+g} towards **{target}**"
        + (f" keeping {', '.join(keep)} fixed" if keep else "")
        + f"; principal directions {pc1:+g}, {pc2:+g}, {pc3:+g}, {pc4:+g} (their variance shares: {shares})."
    )
    return (before, after), info, [*(history or []), (before, after)]


def record_pair(pair, history):
    """Put a before/after result of another studio tool into the undo history and the main slider."""
    if not pair or pair[0] is None or pair[1] is None:
        return gr.skip(), history
    entry = (gray(pair[0]), gray(pair[1]))
    return entry, [*(history or []), entry]


def record_arithmetic(strip, result, history):
    """A - B + C into the history: A (the strip's first tile) before, the result after."""
    if strip is None or result is None:
        return gr.skip(), history
    return record_pair((gray(strip)[:, :28], result), history)


def gray(image) -> np.ndarray:
    """A page image (H, W) or (H, W, 3) as uint8 (H, W)."""
    array = np.asarray(image)
    return array[..., 0] if array.ndim == 3 else array


def studio_undo(history):
    """Step back to the previous studio result (the first one stays)."""
    history = list(history or [])
    if len(history) > 1:
        history.pop()
    if not history:
        return gr.skip(), "Nothing to undo.", history
    return history[-1], f"Back to result {len(history)}.", history


@friendly
def arithmetic(
    model: str,
    a: str = "seed 0",
    b: str = "seed 1",
    c: str = "seed 2",
    image_a=None,
    image_b=None,
    image_c=None,
    label: str = CLASS_NAMES[0],
):
    """Decode A - B + C; each operand a seed ("seed 3"), a class centroid ("Sneaker") or an image."""
    operands = [
        read_upload(image).image if image is not None else text
        for text, image in ((a, image_a), (b, image_b), (c, image_c))
    ]
    latents = [lab.latent(model, operand, label) for operand in operands]
    result = latents[0] - latents[1] + latents[2]
    images = to_uint8_list(lab.decode(model, torch.stack([*latents, result]), label))
    return row(images[:3]), images[3]


@friendly
def keyframes(
    model: str,
    keys: str = "seed 0, Sneaker, seed 5",
    steps: int = 8,
    method: str = "slerp",
    label: str = CLASS_NAMES[0],
    images: list | None = None,
):
    """A path through keyframes, as a strip and a GIF. `keys` lists them, comma-separated: seeds
    ("seed 3"), class centroids ("Sneaker") and uploaded `images` by position ("image 1")."""
    operands = []
    for key in (part.strip() for part in keys.split(",")):
        if key.lower().startswith("image"):
            number = check_int("Image number", _number(key[5:].strip() or "0"), 1, len(images or []) or 1)
            if not images:
                raise ValueError(f"{key!r}: upload the keyframe images first.")
            operands.append(read_upload(images[number - 1]).image)
        elif key:
            operands.append(key)
    frames = to_uint8_list(lab.keyframes(model, operands, steps, method, label))
    gif = save_output(gif_bytes([upscale(frame, GIF_ZOOM) for frame in frames], boomerang=False), ".gif")
    return row(frames), gif, gif


@friendly
def inpaint(image, mask, model: str = "dcgan", label: str = CLASS_NAMES[0], progress=gr.Progress()):
    """Regenerate the masked part of an image (mask white = regenerate) consistently with the rest.

    The image is brought to 28x28 as everywhere; the mask is resized to 28x28 and refers to that.
    """
    prepared = read_upload(image).image
    return regenerate(prepared, prepare_mask(mask), model, label, progress)


@friendly
def inpaint_editor(editor: dict | None, model: str = "dcgan", label: str = CLASS_NAMES[0], progress=gr.Progress()):
    """The page's version of `inpaint`: the editor's background is the image, its painted layer the mask."""
    if not editor or editor.get("background") is None:
        raise ValueError("Load an image into the editor first (a seed or an upload), then paint over a part.")
    background = load_image(np.asarray(editor["background"]))
    prepared = np.array(Image.fromarray(background).resize((28, 28), Image.BOX))
    return regenerate(prepared, prepare_mask(painted_layers(editor)), model, label, progress)


def regenerate(prepared: np.ndarray, masked: np.ndarray, model: str, label: str, progress):
    """The masked pixels of `prepared` redrawn by the model (Lab.inpaint), as a before/after pair."""
    blended, generated, result = lab.inpaint(
        model, prepared, masked, label, progress=lambda f: progress(f, desc="Regenerating")
    )
    info = f"**Regenerated with {model}:** PSNR {result.psnr:.1f} dB on the kept pixels, in {result.seconds:.2f} s."
    return (prepared, blended), generated, info


def painted_layers(editor: dict) -> np.ndarray:
    """The alpha of everything painted in an ImageEditor value, (H, W) uint8."""
    layers = [np.asarray(layer) for layer in editor.get("layers") or [] if layer is not None]
    alphas = [layer[..., 3] for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not alphas:
        raise ValueError("Paint over the part to regenerate first.")
    return np.max(alphas, axis=0).astype(np.uint8)


def editor_from_seed(model: str, seed: int, label: str = CLASS_NAMES[0]):
    """Put seed `seed`'s image, enlarged, into the mask editor as its background."""
    try:
        image = to_uint8_list(lab.generate(model, seed, 1, label=label))[0]
    except ValueError as exc:
        raise gr.Error(str(exc)) from exc
    return {"background": upscale(image, 10), "layers": [], "composite": None}


@functools.cache
def map_picture() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The latent map drawn once: RGB image and its coordinate bounds."""
    found = lab.latent_map()
    return scatter(found.points.numpy(), found.labels.numpy())


@friendly
def map_point(x: float = 0.0, y: float = 0.0):
    """Decode map point (x, y) with the VAE; also the 8 test images mapped nearest to it."""
    image, neighbours, labels = lab.map_point(x, y)
    gallery = [(neighbour, CLASS_NAMES[label]) for neighbour, label in zip(neighbours, labels)]
    return image, gallery, f"Map point ({x:.2f}, {y:.2f})"


def show_map():
    """The map picture, or a message when the VAE or the test set is not available."""
    try:
        return map_picture()[0]
    except (ValueError, OSError) as exc:
        logger.warning("No latent map: %s", exc)
        return None


def map_click(evt: gr.SelectData):
    """A click on the map image -> the decoded point (pixel to map coordinates first)."""
    _, bounds = map_picture()
    x, y = pixel_to_point(evt.index[0], evt.index[1], bounds)
    return map_point(x, y)


def map_legend() -> str:
    """Class colours of the map as HTML swatches."""
    swatches = [
        f'<span style="display:inline-block;width:12px;height:12px;background:rgb{tuple(int(v) for v in colour)}"></span> {name}'
        for name, colour in zip(CLASS_NAMES, CLASS_COLOURS)
    ]
    return " &nbsp; ".join(swatches)


# --- shareable settings: a link that restores them, and JSON to copy and load back ---------------

SETTINGS_DEFAULTS = {
    "model": None,
    "seed": 0,
    "num": 16,
    "truncation": 0.0,
    "temperature": 1.0,
    "label": CLASS_NAMES[0],
}
# Runs in the browser: the page's address with the settings as query parameters, copied to the clipboard.
LINK_JS = """
(model, seed, num, truncation, temperature, label) => {
  const url = new URL(window.location.href);
  url.search = new URLSearchParams({model, seed, num, truncation, temperature, label}).toString();
  url.hash = "";
  navigator.clipboard?.writeText(url.toString()).catch(() => {});
  return url.toString();
}
"""


def checked_settings(settings: dict) -> tuple:
    """Generate-tab settings (values may be strings, as in a URL) -> validated component values.

    Missing keys take the defaults; unknown keys and bad values raise a ValueError naming them.
    """
    unknown = sorted(set(settings) - set(SETTINGS_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown setting {unknown[0]!r}; settings are {', '.join(SETTINGS_DEFAULTS)}.")
    values = {**SETTINGS_DEFAULTS, "model": (lab.generative() or [None])[0], **settings}
    lab.model(str(values["model"]))  # a loaded generative model, or the ValueError that lists them
    label = str(values["label"])
    if label not in CLASS_NAMES:
        raise ValueError(f"Unknown class {label!r}; choose one of {', '.join(CLASS_NAMES)}.")
    return (
        str(values["model"]),
        check_int("Seed", _number(values["seed"]), 0, SEED_RANGE),
        check_int("Number of images", _number(values["num"]), 1, MAX_IMAGES),
        check_float("Truncation", _number(values["truncation"]), 0.0, MAX_TRUNCATION),
        check_float("Temperature", _number(values["temperature"]), 0.0, MAX_TEMPERATURE),
        label,
    )


def _number(value) -> float:
    """A setting as a number: URL values arrive as strings; whole numbers stay exact ints."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number.") from None


@friendly
def settings_json(model: str, seed: int, num: int, truncation: float, temperature: float, label: str) -> str:
    """The current Generate settings as JSON, for "Copy settings"."""
    keys = list(SETTINGS_DEFAULTS)
    return json.dumps(
        dict(zip(keys, checked_settings(dict(zip(keys, (model, seed, num, truncation, temperature, label))))))
    )


@friendly
def load_settings(text: str) -> tuple:
    """Settings JSON (as "Copy settings" writes it) -> the Generate tab's controls."""
    try:
        settings = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise ValueError(f"The settings are not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    if not isinstance(settings, dict):
        raise ValueError('Settings must be a JSON object such as {"model": "dcgan", "seed": 3}.')
    return checked_settings(settings)


def settings_from_url(request: gr.Request) -> tuple:
    """On page load: the settings in the address (?model=cgan&seed=3...), if any, else leave the controls."""
    params = dict(request.query_params) if request is not None else {}
    params = {key: value for key, value in params.items() if key in SETTINGS_DEFAULTS}
    if not params:
        return tuple(gr.skip() for _ in SETTINGS_DEFAULTS)
    try:
        return checked_settings(params)
    except ValueError as exc:
        gr.Warning(f"The link's settings were not applied: {exc}")
        return tuple(gr.skip() for _ in SETTINGS_DEFAULTS)


def ping() -> str:
    """No-op endpoint: the round trip of the server itself, for the speed benchmark."""
    return "pong"


def random_seed() -> int:
    """A fresh seed for the dice button (randomness here is the point; everything after is seeded)."""
    return random.randint(0, 2**31 - 1)


def model_card(model: str) -> str:
    """A few lines on the chosen model: what it is and its measured quality (from its model card)."""
    entry = MODELS.get(model)
    if entry is None:
        return ""
    lines = [f"**{model}**: {entry.description}."]
    metrics = lab.metrics.get(model, {})
    if metrics:
        lines.append(" · ".join(f"{name} {value:g}" for name, value in metrics.items()))
        lines.append(
            "<sub>On Fashion-MNIST's test set; FIDc/KIDc use our classifier's features (lower is better). "
            "See the README's Results table for the floor and noise ceiling.</sub>"
        )
    return "\n\n".join(lines)


def knob_visibility(model: str):
    """Show the controls that apply to `model`: truncation or temperature, and the class picker."""
    entry = MODELS.get(model)
    knob = entry.sample_knob if entry else None
    conditional = bool(entry and entry.conditional)
    return (
        gr.update(visible=knob == "truncation"),
        gr.update(visible=knob == "temperature"),
        gr.update(visible=conditional),
    )


def label_visibility(model: str):
    """Show the class picker for conditional models only."""
    entry = MODELS.get(model)
    return gr.update(visible=bool(entry and entry.conditional))


# --- layout ---------------------------------------------------------------------------------------


def build_demo() -> gr.Blocks:
    """Lay out the page for the models in `lab` and wire every event."""
    generative = lab.generative()
    default_model = generative[0] if generative else None

    with GuardedBlocks(title="Latent Lab · Fashion-MNIST", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        status = f"Running on **{lab.device}** with models: {', '.join(lab.models) or 'none'}."
        if lab.broken:
            status += " ⚠️ Not loaded: " + "; ".join(f"**{name}** ({why})" for name, why in lab.broken.items())
        status += "".join(f"\n- {notice}" for notice in lab.notices)
        gr.Markdown(status, elem_id="status")

        with gr.Tab("Generate", id="generate"):
            gr.Markdown(GENERATE_TEXT)
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    g_model = gr.Dropdown(generative, value=default_model, label="Model")
                    g_card = gr.Markdown(model_card(default_model), elem_id="model-card")
                    with gr.Row():
                        g_seed = gr.Number(
                            0,
                            label="Seed",
                            precision=0,
                            minimum=0,
                            maximum=SEED_RANGE,
                            scale=3,
                            elem_id="generate-seed",
                        )
                        g_dice = gr.Button("🎲 Random", scale=1, min_width=60)
                    g_num = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images")
                    g_trunc = gr.Slider(0, MAX_TRUNCATION, value=0, step=0.05, label="Truncation (0 = off)")
                    g_temp = gr.Slider(0, MAX_TEMPERATURE, value=1, step=0.05, label="Temperature", visible=False)
                    g_label = gr.Dropdown(list(CLASS_NAMES), value=CLASS_NAMES[0], label="Class", visible=False)
                    g_compare = gr.Checkbox(False, label="Compare: the same seeds through every model")
                    g_run = gr.Button("Generate", variant="primary", elem_id="generate-button")
                    with gr.Accordion("Share these settings", open=False, elem_id="share"):
                        g_link_button = gr.Button("🔗 Link to this result", size="sm", elem_id="link-button")
                        g_link = gr.Textbox(
                            label="Link (copied): opening it restores the model, seed and settings",
                            buttons=["copy"],
                            elem_id="share-link",
                        )
                        g_json = gr.Code(language="json", label="Settings as JSON", elem_id="settings-json")
                        with gr.Row():
                            g_copy = gr.Button("Copy settings as JSON", size="sm", elem_id="copy-settings")
                            g_load = gr.Button("Load these settings", size="sm", elem_id="load-settings")
                with gr.Column(scale=2):
                    g_grid = gr.Image(
                        label="Grid",
                        format="png",
                        elem_id="generate-grid",
                        elem_classes="enlarge",
                        buttons=["download", "fullscreen"],
                        height=480,
                    )
                    g_compare_out = gr.Gallery(label="Compare", columns=3, visible=False, format="png")
                    g_gallery = gr.Gallery(
                        label="Single images", columns=8, format="png", height=320, elem_id="generate-gallery"
                    )
                    g_file = gr.File(label="Download grid (PNG, 28x28 tiles)")
            g_inputs = [g_model, g_seed, g_num, g_trunc, g_temp, g_compare, g_label]
            g_outputs = [g_grid, g_file, g_compare_out]

            def on_generate(trigger, **options) -> None:
                """Wire `trigger` to generate, then to the gallery of single images."""
                event = trigger(generate, g_inputs, g_outputs, **options)
                event.success(singles, g_inputs, g_gallery, api_visibility="private")

            on_generate(g_run.click, api_name="generate")
            on_generate(
                g_dice.click(random_seed, None, g_seed, api_visibility="private").then, api_visibility="private"
            )
            g_model.change(knob_visibility, g_model, [g_trunc, g_temp, g_label], api_visibility="private")
            g_model.change(model_card, g_model, g_card, api_visibility="private")
            on_generate(g_label.change, api_visibility="private", trigger_mode="always_last")
            for slider in (g_num, g_trunc, g_temp):
                on_generate(slider.release, api_visibility="private", trigger_mode="always_last")
            on_generate(g_compare.change, api_visibility="private", trigger_mode="always_last")
            g_settings = [g_model, g_seed, g_num, g_trunc, g_temp, g_label]
            g_link_button.click(None, g_settings, g_link, js=LINK_JS)
            g_copy.click(settings_json, g_settings, g_json, api_name="settings")
            on_generate(g_load.click(load_settings, g_json, g_settings, api_name="load_settings").success)

        with gr.Tab("Round trip", id="roundtrip"):
            gr.Markdown(ROUNDTRIP_TEXT)
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    r_image = image_input("Upload an image", elem_id="roundtrip-upload")
                    r_sketch = gr.Sketchpad(
                        label="…or draw one (used when no image is uploaded)", type="numpy", canvas_size=(420, 420)
                    )
                    r_seed = gr.Number(0, label="Seed of the posterior samples", precision=0, minimum=0)
                    r_run = gr.Button("Reconstruct", variant="primary", elem_id="roundtrip-button")
                    examples = sorted(EXAMPLES_DIR.glob("*.png"))
                with gr.Column(scale=2):
                    r_steps = gr.Gallery(label="Preprocessing to 28x28", columns=5, format="png", height=240)
                    with gr.Row():
                        r_slider = gr.ImageSlider(
                            label="Before / after", format="png", elem_id="roundtrip-slider", elem_classes="enlarge"
                        )
                        r_heat = gr.Image(
                            label="Per-pixel error (black 0 → white 1)",
                            format="png",
                            elem_classes="enlarge",
                            height=300,
                        )
                    r_summary = gr.Markdown()
                    r_plot = gr.LinePlot(
                        x="dimension", y="value", color="statistic", label="Posterior q(z|x) per latent dimension"
                    )
                    r_samples = gr.Gallery(label="Samples from the posterior", columns=8, format="png", height=160)
            r_outputs = [r_steps, r_slider, r_heat, r_summary, r_plot, r_samples]
            r_run.click(roundtrip, [r_image, r_sketch, r_seed], r_outputs, api_name="roundtrip")
            r_image.upload(roundtrip, [r_image, r_sketch, r_seed], r_outputs, api_visibility="private")
            if examples:
                gr.Examples(
                    [[str(path)] for path in examples],
                    inputs=[r_image],
                    outputs=r_outputs,
                    fn=roundtrip,
                    run_on_click=True,
                    label="Fashion-MNIST test images (one per class)",
                    api_visibility="private",
                )

        with gr.Tab("Interpolate", id="interpolate"):
            gr.Markdown(INTERPOLATE_TEXT)
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    i_model = gr.Dropdown(generative, value=default_model, label="Model")
                    with gr.Row():
                        i_seed_a = gr.Number(0, label="Seed A", precision=0, minimum=0)
                        i_seed_b = gr.Number(1, label="Seed B", precision=0, minimum=0)
                    i_steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps")
                    i_method = gr.Radio(["slerp", "lerp"], value="slerp", label="Method")
                    i_label = gr.Dropdown(list(CLASS_NAMES), value=CLASS_NAMES[0], label="Class", visible=False)
                    with gr.Accordion("Images as endpoints (VAE only; they replace the seeds)", open=False):
                        with gr.Row():
                            i_image_a = image_input("Image A")
                            i_image_b = image_input("Image B")
                    i_run = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
                with gr.Column(scale=2):
                    i_strip = gr.Image(
                        label="Path from A to B", format="png", elem_id="interpolate-strip", elem_classes="enlarge"
                    )
                    i_gif = gr.Image(label="Animation", type="filepath", elem_classes="enlarge", height=300)
                    i_file = gr.File(label="Download GIF")
            i_inputs = [i_model, i_seed_a, i_seed_b, i_steps, i_method, i_image_a, i_image_b, i_label]
            i_outputs = [i_strip, i_gif, i_file]
            i_run.click(interpolate, i_inputs, i_outputs, api_name="interpolate")
            i_steps.release(interpolate, i_inputs, i_outputs, api_visibility="private", trigger_mode="always_last")
            i_method.change(interpolate, i_inputs, i_outputs, api_visibility="private", trigger_mode="always_last")
            i_model.change(label_visibility, i_model, i_label, api_visibility="private")

        with gr.Tab("Edit", id="edit"):
            gr.Markdown(EDIT_TEXT)
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    e_image = image_input("Upload an image", elem_id="edit-upload")
                    e_crop = gr.Slider(0.3, 1.0, value=1.0, step=0.05, label="Crop: central fraction kept")
                    e_angle = gr.Slider(-180, 180, value=0, step=1, label="Rotate (degrees)")
                    with gr.Row():
                        e_flip_h = gr.Checkbox(False, label="Flip horizontally")
                        e_flip_v = gr.Checkbox(False, label="Flip vertically")
                    e_scale = gr.Slider(0.3, 3.0, value=1.0, step=0.05, label="Scale")
                    with gr.Row():
                        e_tx = gr.Slider(-14, 14, value=0, step=1, label="Translate x (px)")
                        e_ty = gr.Slider(-14, 14, value=0, step=1, label="Translate y (px)")
                    with gr.Row():
                        e_shx = gr.Slider(-45, 45, value=0, step=1, label="Shear x (degrees)")
                        e_shy = gr.Slider(-45, 45, value=0, step=1, label="Shear y (degrees)")
                    e_run = gr.Button("Apply and project onto the model", variant="primary", elem_id="edit-button")
                with gr.Column(scale=2):
                    with gr.Row():
                        e_prepared = gr.Image(
                            label="Your image at 28x28", format="png", elem_classes="enlarge", height=300
                        )
                        e_edited = gr.Image(
                            label="Edited (live preview)",
                            format="png",
                            elem_id="edit-preview",
                            elem_classes="enlarge",
                            height=300,
                        )
                    e_slider = gr.ImageSlider(
                        label="Edited / projected onto the VAE", format="png", elem_classes="enlarge"
                    )
            e_inputs = [e_image, e_crop, e_angle, e_flip_h, e_flip_v, e_scale, e_tx, e_ty, e_shx, e_shy]
            e_outputs = [e_prepared, e_edited, e_slider]
            e_run.click(edit, e_inputs, e_outputs, api_name="edit")
            e_image.upload(edit, e_inputs, e_outputs, api_visibility="private")
            for control in (e_crop, e_angle, e_scale, e_tx, e_ty, e_shx, e_shy):
                control.release(edit, e_inputs, e_outputs, api_visibility="private", trigger_mode="always_last")
            for box in (e_flip_h, e_flip_v):
                box.input(edit, e_inputs, e_outputs, api_visibility="private", trigger_mode="always_last")

        with gr.Tab("Studio", id="studio"):
            gr.Markdown(STUDIO_TEXT)
            studio_models = [name for name in generative if not MODELS[name].conditional]
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    s_model = gr.Dropdown(generative, value=default_model, label="Model")
                    s_label = gr.Dropdown(list(CLASS_NAMES), value=CLASS_NAMES[0], label="Class (cGAN)", visible=False)
                    with gr.Row():
                        s_seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=SEED_RANGE, scale=3)
                        s_use_seed = gr.Button("Use seed", scale=1, min_width=80, elem_id="studio-seed")
                    s_image = image_input("…or your image", elem_id="studio-upload")
                    s_invert = gr.Button("Invert my image", variant="primary", elem_id="studio-invert")
                    gr.Markdown(
                        "**Directions** (" + (", ".join(studio_models) or "no model") + ": class and principal)"
                    )
                    s_target = gr.Dropdown(list(CLASS_NAMES), value="Sneaker", label="Towards class")
                    s_amount = gr.Slider(-MAX_MOVE, MAX_MOVE, value=0, step=0.25, label="Amount")
                    s_keep = gr.CheckboxGroup(list(CLASS_NAMES), label="Keep these classes fixed (orthogonalise)")
                    s_pcs = [
                        gr.Slider(-MAX_MOVE, MAX_MOVE, value=0, step=0.25, label=f"Principal direction {i + 1}")
                        for i in range(4)
                    ]
                    with gr.Row():
                        s_apply = gr.Button("Apply", variant="primary", elem_id="studio-apply")
                        s_undo = gr.Button("↶ Undo", elem_id="studio-undo")
                with gr.Column(scale=2):
                    s_slider = gr.ImageSlider(
                        label="Before / after", format="png", elem_id="studio-slider", elem_classes="enlarge"
                    )
                    s_info = gr.Markdown(elem_id="studio-info")
                    with gr.Accordion("Latent arithmetic: A − B + C", open=False):
                        gr.Markdown("Each operand: a seed (`seed 3`), a class centroid (`Sneaker`), or an image.")
                        with gr.Row():
                            a_text = gr.Textbox("Sneaker", label="A")
                            b_text = gr.Textbox("Sandal", label="B")
                            c_text = gr.Textbox("seed 3", label="C")
                        with gr.Row():
                            a_image, b_image, c_image = (image_input(f"Image {n} (optional)") for n in "ABC")
                        a_run = gr.Button("Compute A − B + C", elem_id="arithmetic-button")
                        with gr.Row():
                            a_operands = gr.Image(label="A, B, C", format="png", elem_classes="enlarge")
                            a_result = gr.Image(
                                label="A − B + C", format="png", elem_classes="enlarge", elem_id="arithmetic-result"
                            )
                    with gr.Accordion("Keyframes: a path through several latents, as a GIF", open=False):
                        k_keys = gr.Textbox(
                            "seed 0, Sneaker, Bag, seed 5",
                            label="Keyframes, comma-separated: seed 3, a class name, or image 1, image 2 … below",
                        )
                        k_images = gr.File(
                            label="Keyframe images (optional)", file_count="multiple", file_types=["image"]
                        )
                        with gr.Row():
                            k_steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Frames per segment")
                            k_method = gr.Radio(["slerp", "lerp"], value="slerp", label="Method")
                        k_run = gr.Button("Make the path", elem_id="keyframes-button")
                        k_strip = gr.Image(
                            label="Path", format="png", elem_classes="enlarge", elem_id="keyframes-strip"
                        )
                        with gr.Row():
                            k_gif = gr.Image(label="Animation", type="filepath", elem_classes="enlarge", height=240)
                            k_file = gr.File(label="Download GIF")
                    with gr.Accordion("Masked regeneration: paint over a part, the model redraws it", open=False):
                        m_editor = gr.ImageEditor(
                            label="Paint over what to regenerate",
                            type="numpy",
                            image_mode="RGBA",
                            brush=gr.Brush(colors=["#ff0066"], default_size=24),
                            canvas_size=(280, 280),
                            elem_id="mask-editor",
                        )
                        with gr.Row():
                            m_from_seed = gr.Button("Load the seed's image", elem_id="mask-seed")
                            m_run = gr.Button("Regenerate", variant="primary", elem_id="mask-button")
                        with gr.Row():
                            m_slider = gr.ImageSlider(
                                label="Before / after", format="png", elem_classes="enlarge", elem_id="mask-slider"
                            )
                            m_generated = gr.Image(
                                label="Model's full image", format="png", elem_classes="enlarge", height=260
                            )
                        m_info = gr.Markdown()
                    # api_name="inpaint" (file image and mask) for gradio_client; the page uses the editor.
                    m_image_api = Upload(visible=False)
                    m_mask_api = Upload(visible=False)
                    m_api = gr.Button(visible=False)
            s_base = gr.State(None)
            s_history = gr.State([])
            s_model.change(label_visibility, s_model, s_label, api_visibility="private")
            s_invert.click(
                studio_invert,
                [s_image, s_model, s_label, s_history],
                [s_slider, s_info, s_base, s_history],
                api_name="invert",
            )
            s_use_seed.click(
                studio_seed,
                [s_model, s_seed, s_label, s_history],
                [s_slider, s_info, s_base, s_history],
                api_name="studio_seed",
            )
            s_apply.click(
                studio_move,
                [s_model, s_seed, s_target, s_amount, s_keep, *s_pcs, s_label, s_base, s_history],
                [s_slider, s_info, s_history],
                api_name="move",
            )
            s_undo.click(studio_undo, s_history, [s_slider, s_info, s_history], api_visibility="private")
            a_run.click(
                arithmetic,
                [s_model, a_text, b_text, c_text, a_image, b_image, c_image, s_label],
                [a_operands, a_result],
                api_name="arithmetic",
            ).success(
                record_arithmetic, [a_operands, a_result, s_history], [s_slider, s_history], api_visibility="private"
            )
            k_run.click(
                keyframes,
                [s_model, k_keys, k_steps, k_method, s_label, k_images],
                [k_strip, k_gif, k_file],
                api_name="keyframes",
            )
            m_from_seed.click(editor_from_seed, [s_model, s_seed, s_label], m_editor, api_visibility="private")
            m_run.click(
                inpaint_editor, [m_editor, s_model, s_label], [m_slider, m_generated, m_info], api_visibility="private"
            ).success(record_pair, [m_slider, s_history], [s_slider, s_history], api_visibility="private")
            m_api.click(
                inpaint,
                [m_image_api, m_mask_api, s_model, s_label],
                [m_slider, m_generated, m_info],
                api_name="inpaint",
            )

        with gr.Tab("Map", id="map"):
            gr.Markdown(MAP_TEXT)
            with gr.Row():
                with gr.Column(scale=3):
                    map_image = gr.Image(
                        label="VAE latent map (PCA of the test set's posterior means)",
                        format="png",
                        interactive=False,
                        elem_id="latent-map",
                        buttons=["fullscreen"],
                    )
                    gr.Markdown(map_legend())
                with gr.Column(scale=2):
                    map_decoded = gr.Image(
                        label="This point, decoded", format="png", elem_classes="enlarge", height=260
                    )
                    map_where = gr.Markdown(elem_id="map-where")
                    map_near = gr.Gallery(label="Nearest test images on the map", columns=4, format="png", height=240)
            map_image.select(map_click, None, [map_decoded, map_near, map_where], api_visibility="private")
            map_x = gr.Number(0.0, visible=False)
            map_y = gr.Number(0.0, visible=False)
            map_api = gr.Button(visible=False)
            map_api.click(map_point, [map_x, map_y], [map_decoded, map_near, map_where], api_name="map_point")
            demo.load(show_map, None, map_image, api_visibility="private")

        gr.api(ping, api_name="ping")
        # The page opens on the settings in its address (a shared link), then generates.
        on_generate(
            demo.load(settings_from_url, None, g_settings, api_visibility="private").then, api_visibility="private"
        )
    # Queue positions go out once a second, not to every waiting client each time a job starts (with
    # one shared line that is a message per waiting client per job: 54 vs 42 ms of CPU per request).
    demo.queue(default_concurrency_limit=MAX_THREADS, max_size=QUEUE_SIZE, status_update_rate=STATUS_UPDATE_S)
    share_one_line(demo)
    return demo


def share_one_line(blocks: gr.Blocks) -> None:
    """Put every computing event in one concurrency group of MAX_THREADS slots: one first-come line.

    By default each event has its own group, and Gradio picks the next group to serve at random; an
    action asked for twice as often as another (the grid, for every model) then waits in a queue
    twice as long (median 3.7 s against 0.5 s for the rest at 32 clients). The no-op `ping` keeps its
    own group, so a health check answers even when the line is long.
    """
    for block_fn in blocks.fns.values():
        if block_fn.api_name != "ping":
            block_fn.concurrency_id = "compute"
            block_fn.concurrency_limit = MAX_THREADS


# --- small display helpers ----------------------------------------------------------------------


def to_uint8_list(images: torch.Tensor) -> list[np.ndarray]:
    """Model output (N, 1, 28, 28) in [-1, 1] -> list of uint8 (28, 28)."""
    return list(to_uint8(images).numpy())


def posterior_frame(mu: np.ndarray, std: np.ndarray) -> pd.DataFrame:
    """Long-form table of the posterior mean and standard deviation per latent dimension, for a LinePlot."""
    dims = np.arange(len(mu))
    return pd.DataFrame(
        {
            "dimension": np.concatenate([dims, dims]),
            "value": np.concatenate([mu, std]).astype(float),
            "statistic": ["mean"] * len(mu) + ["standard deviation"] * len(std),
        }
    )


def make_lab(device: str, repos: list[str] | str) -> Lab:
    """The lab on `device` with the Hub checkpoints `repos` (MODEL=OWNER/NAME[@REVISION] specs).

    Specs that do not parse are reported on the page and skipped: the app always starts.
    """
    try:
        sources = parse_model_repos(repos)
    except ValueError as exc:
        logger.warning("Hub repos ignored: %s", exc)
        sources, problem = {}, [f"Hub repos ignored: {exc}"]
    else:
        problem = []
    built = Lab(device, sources)
    built.notices[:0] = problem
    return built


# Built at import so `from app import demo` works (tests, `gradio app.py` reload mode, Spaces).
lab = make_lab(os.environ.get("GENMODELS_DEVICE", "auto"), os.environ.get("GENMODELS_HUB_REPOS", ""))
demo = build_demo()


def warm_studio() -> None:
    """Compute the studio's directions and the latent map in the background, before the first click."""
    for name in lab.generative():
        if not MODELS[name].conditional:
            try:
                lab.directions(name)
            except (ValueError, OSError) as exc:  # e.g. no Fashion-MNIST files for the VAE's directions
                logger.warning("Studio directions for %s unavailable: %s", name, exc)
    show_map()


def release_freed_memory() -> None:
    """Serve allocations of MMAP_THRESHOLD bytes and more (tensors, images) straight from the OS.

    glibc raises its mmap threshold each time such a block is freed (up to 32 MB); from then on
    tensors come from its heap arenas, which concurrent requests fragment so that freed memory is
    never handed back. Measured on this app (32 clients, 3 x 384 requests of every endpoint):
    resident memory +342 MB with the dynamic threshold, +77 MB with this call (+65 MB with the same
    setting made by MALLOC_MMAP_THRESHOLD_=65536 at start-up). Does nothing off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return


def main() -> None:
    release_freed_memory()
    parser = argparse.ArgumentParser(description="Run the Latent Lab web app.")
    # Defaults from Gradio's own variables, which a Hugging Face Space sets (0.0.0.0:7860).
    host, port = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    parser.add_argument("--host", default=host, help="interface to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=port, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the models run")
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 1) // MAX_THREADS),
        help="CPU threads per request (default: the cores shared among the requests computed at once)",
    )
    parser.add_argument(
        "--hub-repo",
        action="append",
        default=[],
        metavar="MODEL=OWNER/NAME[@REVISION]",
        help="load MODEL from this Hub repo (repeatable); falls back to the bundled checkpoint",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    # Requests run side by side, each on its share of the cores: the models are small, and splitting
    # each request's tiny operations over every core made the threads spin-wait for one another
    # (generate: 50 ms of CPU per call with 2 threads, 11 ms with 1).
    torch.set_num_threads(args.threads)
    try:
        parse_model_repos(args.hub_repo)
    except ValueError as exc:
        parser.error(str(exc))

    global lab, demo
    if args.hub_repo or resolve_device(args.device) != lab.device:
        lab = make_lab(args.device, " ".join([os.environ.get("GENMODELS_HUB_REPOS", ""), *args.hub_repo]))
        demo = build_demo()
    logger.info("Models on %s: %s", lab.device, ", ".join(lab.models))
    threading.Thread(target=warm_studio, name="warm-studio", daemon=True).start()
    demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True, **LAUNCH_OPTIONS
    )
    if args.share and demo.share_url:
        logger.info("Public link (anyone with it can use this app while it runs): %s", demo.share_url)
    elif args.share:
        logger.warning(
            "No public link: the tunnel to gradio.live could not be made (no internet, or a firewall in the way). "
            "The app is served locally only, at %s. To share it, deploy it as a Hugging Face Space "
            "(README: Deploy as a Space) or run it with --host 0.0.0.0 on a machine others can reach.",
            demo.local_url,
        )
    demo.block_thread()


if __name__ == "__main__":
    main()
