"""Denoise tab: watch the flow model carry noise (or your picture, partly noised) to an image, step by
step, as it runs; scrub the path and take it as a GIF; the same seed at three guidance weights."""

from __future__ import annotations

import gradio as gr
import numpy as np

from genmodels.data import CLASS_NAMES
from genmodels.flow import REALIZE_STRENGTH
from genmodels.images import row
from genmodels.lab import Lab
from genmodels.limits import ANY_CLASS, MAX_APP_SEED, MAX_GUIDANCE, MAX_SAMPLING_STEPS

from . import texts
from .components import (
    CLASS_CHOICES,
    bind,
    class_of,
    first_sight,
    flow_sampling,
    friendly,
    gif_output,
    image_input,
    read_upload,
    to_uint8_list,
)
from .files import OutputStore
from .interpolate import gif

BLANK = np.full((28, 28), 128, dtype=np.uint8)  # the prediction before the first step: none yet


def frame_text(index: int, total: int | None, t: float) -> str:
    where = "the start" if index == 0 else f"step {index}" + (f" of {total}" if total else "")
    return f"**{where}:** t = {t:.3f} · left x<sub>t</sub>, right the clean image predicted from it"


@friendly
def denoise(
    lab: Lab,
    store: OutputStore,
    seed: int = 0,
    label: str = ANY_CLASS,
    steps: int | None = None,
    guidance: float | None = None,
    image: str | bytes | None = None,
    strength: float = REALIZE_STRENGTH,
    model: str = "flow",
):
    """Watch the flow model denoise, one ODE step at a time; the pictures stream while it runs.

    Starts from seed `seed`'s noise at t = 1 (a sample), or, with `image`, from the picture noised to
    t = strength (a realize). Each frame shows x_t beside the clean image the model predicts from it,
    x_0 = x_t - t v. Returns the last frame, its caption, the step shown, and the whole path as a GIF.

    Args:
        seed: random seed of the noise.
        label: the class, or "any class".
        steps: ODE steps from t = 1 to 0, 1 to 50 (a realize takes its share of them).
        guidance: classifier-free guidance weight, 0 to 5.
        image: optional picture to realize instead of sampling.
        strength: for a picture, how far it is noised, 0 to 1.
        model: the flow model: "flow", or one you trained in the Train tab ("yours-flow-...").
    """
    prepared = None if image is None else read_upload(image).image
    path = lab.denoise(seed, class_of(label), steps, guidance, prepared, strength, model)
    frames, times = [], []
    for t, x_t, predicted in path:
        frames.append(row([x_t, BLANK if predicted is None else predicted]))
        times.append(t)
        yield frames[-1], frame_text(len(frames) - 1, None, t), gr.update(), None, None
    total = len(frames) - 1
    state = {"frames": frames, "times": times}
    step = gr.update(maximum=max(total, 1), value=total, interactive=total > 0)
    animation = gif(store, frames, boomerang=False)
    yield frames[-1], frame_text(total, total, times[-1]), step, animation, state


def show_step(path: dict | None, step: int):
    """The frame of step `step` of the path last watched (the page's scrubber)."""
    if not path:
        return gr.update(), "Run the denoiser first."
    index = int(min(max(step, 0), len(path["frames"]) - 1))
    return path["frames"][index], frame_text(index, len(path["frames"]) - 1, path["times"][index])


@friendly
def compare_guidance(
    lab: Lab,
    seed: int = 0,
    label: str = CLASS_NAMES[0],
    steps: int | None = None,
    guidance: float | None = None,
    model: str = "flow",
):
    """The same seed and class at guidance 0 (the class ignored), 1 (the plain conditional model) and
    `guidance`, side by side: what classifier-free guidance trades.

    Args:
        seed: random seed of the noise.
        label: the class (a class is needed: guidance weighs it against none).
        steps: ODE steps, 1 to 50.
        guidance: the third weight, 0 to 5.
        model: the flow model: "flow", or one you trained in the Train tab.
    """
    images, weights = lab.guidance_row(seed, class_of(label), steps, guidance, model)
    return [(image, f"guidance {weight:g}") for image, weight in zip(to_uint8_list(images), weights)]


def render(lab: Lab, store: OutputStore) -> gr.Dropdown:
    """Lay out the Denoise tab and wire its events; returns its model picker (a user's flow models join it)."""
    # It opens on its defaults' path (seed 0, a sneaker), as "Run and watch" would show it.
    shown = first_sight(bind(denoise, lab, store), 0, CLASS_NAMES[7]) or (None, None, None, None, None)
    sampling = flow_sampling(lab)  # the flow checkpoint's steps and guidance
    total = len(shown[4]["frames"]) - 1 if shown[4] else sampling.steps
    gr.Markdown(texts.DENOISE)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(["flow"], value="flow", label="Flow model", elem_id="denoise-model")
            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_APP_SEED, elem_id="denoise-seed")
            label = gr.Dropdown(CLASS_CHOICES, value=CLASS_NAMES[7], label="Class", elem_id="denoise-class")
            steps = gr.Slider(1, MAX_SAMPLING_STEPS, value=sampling.steps, step=1, label="Steps (ODE)")
            guidance = gr.Slider(0, MAX_GUIDANCE, value=sampling.guidance, step=0.1, label="Guidance")
            with gr.Accordion("…or realize your picture (start from it, partly noised)", open=False):
                image = image_input("Your picture (optional)", elem_id="denoise-upload")
                strength = gr.Slider(0.05, 1.0, value=REALIZE_STRENGTH, step=0.05, label="Strength")
            with gr.Row():
                run = gr.Button("Run and watch", variant="primary", elem_id="denoise-button")
                side = gr.Button("Guidance side by side", elem_id="guidance-button")
        with gr.Column(scale=2):
            picture = gr.Image(
                shown[0],
                label="x_t (left) and the predicted clean image (right)",
                format="png",
                elem_id="denoise-picture",
                elem_classes="enlarge",
                height=300,
            )
            info = gr.Markdown(shown[1], elem_id="denoise-info")
            step = gr.Slider(
                0, total, value=total, step=1, label="Step", interactive=shown[4] is not None, elem_id="denoise-step"
            )
            animation = gif_output("The path (GIF)", 220, value=shown[3], elem_id="denoise-animation")
            row_out = gr.Gallery(
                label="Guidance side by side", columns=3, format="png", height=220, elem_id="guidance-row"
            )
    path = gr.State(shown[4])
    run.click(
        bind(denoise, lab, store),
        [seed, label, steps, guidance, image, strength, model],
        [picture, info, step, animation, path],
        api_name="denoise",
        show_progress="minimal",
    )
    step.input(show_step, [path, step], [picture, info], api_visibility="private", show_progress="hidden")
    side.click(bind(compare_guidance, lab), [seed, label, steps, guidance, model], row_out, api_name="compare_guidance")
    return model
