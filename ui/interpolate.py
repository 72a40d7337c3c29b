"""Interpolate tab: a path between two latents (seeds, or images with the VAE), as a strip and a GIF."""

from __future__ import annotations

import gradio as gr

from genmodels.data import CLASS_NAMES
from genmodels.images import gif_bytes, row, upscale
from genmodels.lab import Lab
from genmodels.limits import MAX_STEPS

from . import texts
from .components import (
    CLASS_CHOICES,
    LIVE,
    bind,
    class_of,
    first_sight,
    friendly,
    gif_output,
    image_input,
    label_visibility,
    read_upload,
    to_uint8_list,
)
from .files import OutputStore

GIF_ZOOM = 8  # GIF frames are enlarged to 224x224 (nearest-neighbour): a GIF is viewed outside the page


def gif(store: OutputStore, frames: list, boomerang: bool = True) -> str:
    """The frames enlarged GIF_ZOOM times as a looping GIF file in the store."""
    return store.save(gif_bytes([upscale(frame, GIF_ZOOM) for frame in frames], boomerang=boomerang), ".gif")


@friendly
def interpolate(
    lab: Lab,
    store: OutputStore,
    model: str,
    seed_a: int,
    seed_b: int,
    steps: int = 8,
    method: str = "slerp",
    image_a: str | bytes | None = None,
    image_b: str | bytes | None = None,
    label: str = CLASS_NAMES[0],
):
    """Walk between two latents and decode each step: a strip of images and a looping GIF.

    Args:
        model: the generative model (dcgan, vae, cgan or flow).
        seed_a: random seed of the first endpoint.
        seed_b: random seed of the last endpoint.
        steps: images along the path, 2 to 32.
        method: slerp (along the sphere where Gaussian latents live) or lerp (a straight line).
        image_a: VAE and flow only: a picture whose latent (encoded, or the flow run backwards) replaces seed A.
        image_b: VAE and flow only: a picture whose latent replaces seed B.
        label: the class of cgan and flow (flow also takes "any class").
    """
    a = read_upload(image_a).image if image_a is not None else None
    b = read_upload(image_b).image if image_b is not None else None
    frames = to_uint8_list(lab.interpolate(model, seed_a, seed_b, steps, method, a, b, class_of(label)))
    animation = gif(store, frames)
    return row(frames), animation


@friendly
def scrub(
    lab: Lab,
    model: str,
    seed_a: int,
    seed_b: int,
    position: float = 0.5,
    method: str = "slerp",
    image_a: str | bytes | None = None,
    image_b: str | bytes | None = None,
    label: str = CLASS_NAMES[0],
):
    """The image at `position` (0 = A, 1 = B) along the path, for the slider that scrubs along it."""
    a = read_upload(image_a).image if image_a is not None else None
    b = read_upload(image_b).image if image_b is not None else None
    return to_uint8_list(lab.interpolate_at(model, seed_a, seed_b, position, method, a, b, class_of(label)))[0]


def render(lab: Lab, store: OutputStore) -> gr.Dropdown:
    """Lay out the Interpolate tab and wire its events; returns its model picker (which gains
    a user's own models)."""
    generative = lab.generative()
    first = generative[0] if generative else None
    # It opens on seed 0 to seed 1 in the first model (its defaults): the strip, the GIF and the middle.
    shown = first_sight(bind(interpolate, lab, store), first, 0, 1) if first else None
    middle = first_sight(bind(scrub, lab), first, 0, 1, 0.5) if shown else None
    shown, middle = shown or (None, None), middle or (None,)
    gr.Markdown(texts.INTERPOLATE)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(generative, value=first, label="Model")
            with gr.Row():
                seed_a = gr.Number(0, label="Seed A", precision=0, minimum=0)
                seed_b = gr.Number(1, label="Seed B", precision=0, minimum=0)
            steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps", elem_id="interpolate-steps")
            method = gr.Radio(["slerp", "lerp"], value="slerp", label="Method")
            label = gr.Dropdown(CLASS_CHOICES, value=CLASS_NAMES[0], label="Class", visible=False)
            with gr.Accordion("Images as endpoints (VAE only; they replace the seeds)", open=False):
                with gr.Row():
                    image_a = image_input("Image A")
                    image_b = image_input("Image B")
            run = gr.Button("Interpolate", variant="primary", elem_id="interpolate-button")
        with gr.Column(scale=2):
            strip = gr.Image(
                shown[0], label="Path from A to B", format="png", elem_id="interpolate-strip", elem_classes="enlarge"
            )
            with gr.Row():
                position = gr.Slider(
                    0,
                    1,
                    value=0.5,
                    step=0.01,
                    label="Scrub along the path (0 = A, 1 = B)",
                    elem_id="interpolate-position",
                )
                frame = gr.Image(
                    middle[0],
                    label="Here",
                    format="png",
                    elem_classes="enlarge",
                    height=200,
                    elem_id="interpolate-frame",
                )
            animation = gif_output("Animation (GIF)", 300, value=shown[1])
    inputs = [model, seed_a, seed_b, steps, method, image_a, image_b, label]
    outputs = [strip, animation]
    handler = bind(interpolate, lab, store)
    run.click(handler, inputs, outputs, api_name="interpolate")
    steps.release(handler, inputs, outputs, api_visibility="private", trigger_mode="always_last")
    method.change(handler, inputs, outputs, api_visibility="private", trigger_mode="always_last")
    model.change(label_visibility, [model, label], label, api_visibility="private")
    # Live: the picture follows the slider while it moves (only the newest position waits, never a backlog).
    scrub_inputs = [model, seed_a, seed_b, position, method, image_a, image_b, label]
    position.input(bind(scrub, lab), scrub_inputs, frame, **LIVE)
    return model
