"""Edit tab: classic edits of an upload with a live preview, then a projection onto the VAE or a
realize by the flow model (SDEdit), side by side."""

from __future__ import annotations

import gradio as gr

from genmodels.data import EXAMPLES_DIR
from genmodels.editing import EditParams
from genmodels.flow import REALIZE_STRENGTH
from genmodels.lab import Lab
from genmodels.limits import ANY_CLASS

from . import texts
from .components import CLASS_CHOICES, LIVE, bind, class_of, first_sight, friendly, image_input, read_upload


@friendly
def edit(
    lab: Lab,
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
    """Edit a picture with classic operations, then project it onto what the VAE can make.

    Returns the picture at 28x28, the edited picture, and the edited picture next to its projection
    (encoded and decoded by the VAE: the nearest image the model knows).

    Args:
        image: the picture to edit.
        crop: central fraction kept, 0.3 to 1.
        angle: rotation in degrees, -180 to 180.
        flip_h: mirror left to right.
        flip_v: mirror top to bottom.
        scale: zoom, 0.3 to 3.
        translate_x: shift right in pixels, -14 to 14.
        translate_y: shift down in pixels, -14 to 14.
        shear_x: horizontal shear in degrees, -45 to 45.
        shear_y: vertical shear in degrees, -45 to 45.
    """
    prepared = read_upload(image).image
    params = EditParams(crop, angle, bool(flip_h), bool(flip_v), scale, translate_x, translate_y, shear_x, shear_y)
    edited, projected = lab.edit(prepared, params)
    return prepared, edited, (edited, projected)


@friendly
def realize(
    lab: Lab, image: str | bytes | None, strength: float = REALIZE_STRENGTH, label: str = ANY_CLASS, seed: int = 0
):
    """Make a rough picture (an edit, a drawing, a blurred photo) realistic with the flow model (SDEdit).

    The picture, brought to 28x28, is noised to time t = strength on the flow's path from images to
    noise and then denoised by the model's ODE: at a low strength only details change, at 1 the
    picture is forgotten. Returns the picture and its realized version as a before/after pair.

    Args:
        image: the picture to realize.
        strength: how much of the picture is noised away, 0 to 1 (0: unchanged; 0.5 by default).
        label: the class to realize it as, or "any class" to let the model decide.
        seed: random seed of the noise.
    """
    prepared = read_upload(image).image
    return prepared, lab.realize(prepared, strength, class_of(label), seed)


@friendly
def edit_and_realize(lab: Lab, image: str | bytes | None, *controls):
    """The page's version of `realize`: the picture after the Edit tab's controls (in `edit`'s order,
    then strength and class) realized."""
    *edits, strength, label = controls
    _, edited, _ = edit(lab, image, *edits)
    return edited, lab.realize(edited, strength, class_of(label))


def realize_controls(elem_prefix: str) -> tuple:
    """Strength, class and button of a realize: (strength, label, button)."""
    with gr.Row():
        strength = gr.Slider(
            0.05,
            1.0,
            value=REALIZE_STRENGTH,
            step=0.05,
            label="Strength (0: as it is, 1: a new image)",
            elem_id=f"{elem_prefix}-strength",
        )
        label = gr.Dropdown(CLASS_CHOICES, value=ANY_CLASS, label="Realize as class")
    button = gr.Button("Realize with the flow model", elem_id=f"{elem_prefix}-realize")
    return strength, label, button


def render(lab: Lab) -> None:
    """Lay out the Edit tab and wire its events: every control previews while it moves. It opens on the
    first example, unedited, and its projection."""
    examples = sorted(EXAMPLES_DIR.glob("*.png"))
    example = str(examples[0]) if examples else None
    shown = (first_sight(bind(edit, lab), example) if example else None) or (None, None, None)
    gr.Markdown(texts.EDIT)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = image_input(
                "Upload an image", value=example if shown[0] is not None else None, elem_id="edit-upload"
            )
            crop = gr.Slider(0.3, 1.0, value=1.0, step=0.05, label="Crop: central fraction kept")
            angle = gr.Slider(-180, 180, value=0, step=1, label="Rotate (degrees)", elem_id="edit-angle")
            with gr.Row():
                flip_h = gr.Checkbox(False, label="Flip horizontally")
                flip_v = gr.Checkbox(False, label="Flip vertically")
            scale = gr.Slider(0.3, 3.0, value=1.0, step=0.05, label="Scale")
            with gr.Row():
                translate_x = gr.Slider(-14, 14, value=0, step=1, label="Translate x (px)")
                translate_y = gr.Slider(-14, 14, value=0, step=1, label="Translate y (px)")
            with gr.Row():
                shear_x = gr.Slider(-45, 45, value=0, step=1, label="Shear x (degrees)")
                shear_y = gr.Slider(-45, 45, value=0, step=1, label="Shear y (degrees)")
            run = gr.Button("Apply and project onto the model", variant="primary", elem_id="edit-button")
        with gr.Column(scale=2):
            with gr.Row():
                prepared = gr.Image(
                    shown[0], label="Your image at 28x28", format="png", elem_classes="enlarge", height=300
                )
                edited = gr.Image(
                    shown[1],
                    label="Edited (live preview)",
                    format="png",
                    elem_id="edit-preview",
                    elem_classes="enlarge",
                    height=300,
                )
            with gr.Row():
                slider = gr.ImageSlider(
                    shown[2],
                    label="Edited / projected onto the VAE",
                    format="png",
                    elem_classes="enlarge",
                    elem_id="edit-slider",
                )
                realized = gr.ImageSlider(
                    label="Edited / realized by the flow model",
                    format="png",
                    elem_classes="enlarge",
                    elem_id="edit-realized",
                )
            strength, label, realize_button = realize_controls("edit")
    inputs = [image, crop, angle, flip_h, flip_v, scale, translate_x, translate_y, shear_x, shear_y]
    outputs = [prepared, edited, slider]
    handler = bind(edit, lab)
    run.click(handler, inputs, outputs, api_name="edit")
    image.upload(handler, inputs, outputs, api_visibility="private")
    for control in (crop, angle, scale, translate_x, translate_y, shear_x, shear_y, flip_h, flip_v):
        control.input(handler, inputs, outputs, **LIVE)  # live: the preview follows the control as it moves
    realize_button.click(bind(edit_and_realize, lab), [*inputs, strength, label], realized, api_visibility="private")
    # api_name="realize" for gradio_client: an image in, no edits, and the seed of the noise.
    api_button, seed = gr.Button(visible=False), gr.Number(0, precision=0, visible=False)
    api_button.click(bind(realize, lab), [image, strength, label, seed], realized, api_name="realize")
