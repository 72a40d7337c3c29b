"""Round trip tab: an upload or a drawing through the VAE and back, with what it costs."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from genmodels.data import EXAMPLES_DIR
from genmodels.flow import REALIZE_STRENGTH
from genmodels.images import fit_for_display, heatmap, row
from genmodels.lab import Lab
from genmodels.limits import ANY_CLASS
from genmodels.preprocess import PREPARATIONS, Prepared

from . import texts
from .components import Sketchpad, bind, class_of, first_sight, friendly, image_input, read_upload
from .edit import realize_controls


@friendly
def roundtrip(
    lab: Lab, image: str | bytes | None, sketch: dict | None = None, seed: int = 0, preparation: str = "auto"
):
    """Push a picture through the VAE and back: how it is prepared, its reconstruction and the error.

    Returns the preparation steps to 28x28 (none when the picture is used as it is), the prepared image
    and its reconstruction, a per-pixel error
    map, a summary (MSE, PSNR, what preparation did), the posterior mean and spread per latent
    dimension, and 8 samples from the posterior side by side in one picture.

    Args:
        image: the picture to reconstruct (any common format; a Fashion-MNIST-like image passes unchanged).
        sketch: a drawing, used when there is no image.
        seed: random seed of the posterior samples.
        preparation: auto (Fashion-MNIST-like pictures as they are), full (like a photo or drawing) or resize.
    """
    prepared = read_upload(image if image is not None else sketch, "an image (or draw one)", preparation)
    result = lab.roundtrip(prepared.image, seed)
    steps = [] if unchanged(prepared) else [(fit_for_display(step), name) for name, step in prepared.steps]
    slider = (result.input, result.reconstruction)
    summary = (
        f'**Reconstruction error** against the prepared 28x28 image ("before"): MSE {result.mse:.4f} '
        f"(pixels in [0, 1]) · PSNR {result.psnr:.1f} dB · latent dimensions: {len(result.mu)}\n\n"
        f"**Preparation:** {prepared.summary}"
    )
    plot = posterior_frame(result.mu, result.std)
    samples = row(list(result.samples))
    return steps, slider, heatmap(result.error), summary, plot, samples


@friendly
def roundtrip_realize(
    lab: Lab,
    image: str | bytes | None,
    sketch: dict | None = None,
    preparation: str = "auto",
    strength: float = REALIZE_STRENGTH,
    label: str = ANY_CLASS,
):
    """The page's realize of the Round trip picture or drawing (see /realize), next to the VAE's."""
    prepared = read_upload(image if image is not None else sketch, "an image (or draw one)", preparation).image
    return prepared, lab.realize(prepared, strength, class_of(label))


def unchanged(prepared: Prepared) -> bool:
    """Whether the picture reached the model as it was (one step, the prepared image itself): the
    gallery then stays empty rather than repeat "before" (one file fewer to write and download)."""
    return len(prepared.steps) == 1 and np.array_equal(prepared.steps[0][1], prepared.image)


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


def render(lab: Lab) -> None:
    """Lay out the Round trip tab and wire its events; it opens on the first example's round trip."""
    examples = sorted(EXAMPLES_DIR.glob("*.png"))
    example = str(examples[0]) if examples else None
    shown = first_sight(bind(roundtrip, lab), example) if example else None
    shown = shown or (None,) * 6
    gr.Markdown(texts.ROUNDTRIP)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = image_input(
                "Upload an image", value=example if shown[0] is not None else None, elem_id="roundtrip-upload"
            )
            sketch = Sketchpad(label="…or draw one (used when no image is uploaded)", canvas_size=(420, 420))
            seed = gr.Number(0, label="Seed of the posterior samples", precision=0, minimum=0)
            preparation = gr.Radio(
                [(f"{name}: {text}", name) for name, text in PREPARATIONS.items()],
                value="auto",
                label="Bringing your picture to 28x28",
                elem_id="roundtrip-preparation",
            )
            run = gr.Button("Reconstruct", variant="primary", elem_id="roundtrip-button")
        with gr.Column(scale=2):
            steps = gr.Gallery(
                shown[0],
                label="Preprocessing to 28x28 (empty when your picture is used as it is)",
                columns=5,
                format="png",
                height=240,
                object_fit="contain",
                fit_columns=False,  # one step stays a fifth of the width, not a 780 px close-up
                elem_id="roundtrip-steps",
            )
            with gr.Row():
                slider = gr.ImageSlider(
                    shown[1], label="Before / after", format="png", elem_id="roundtrip-slider", elem_classes="enlarge"
                )
                heat = gr.Image(
                    shown[2],
                    label="Per-pixel error (black 0 → white 1)",
                    format="png",
                    elem_classes="enlarge",
                    height=300,
                )
            summary = gr.Markdown(shown[3], elem_id="roundtrip-summary")
            with gr.Accordion("Realize with the flow model instead: compare with the VAE's reconstruction", open=False):
                realized = gr.ImageSlider(
                    label="Before / realized by the flow model",
                    format="png",
                    elem_id="roundtrip-realized",
                    elem_classes="enlarge",
                )
                strength, label, realize_button = realize_controls("roundtrip")
            plot = gr.LinePlot(
                shown[4], x="dimension", y="value", color="statistic", label="Posterior q(z|x) per latent dimension"
            )
            # One picture, not a gallery of eight: each picture is a file to write, check and download.
            samples = gr.Image(
                shown[5],
                label="8 samples z ~ q(z|x) from the posterior, side by side",
                format="png",
                elem_id="roundtrip-samples",
                elem_classes="enlarge",
                height=140,
            )
    outputs = [steps, slider, heat, summary, plot, samples]
    handler = bind(roundtrip, lab)
    inputs = [image, sketch, seed, preparation]
    run.click(handler, inputs, outputs, api_name="roundtrip")
    image.upload(handler, inputs, outputs, api_visibility="private")
    realize_button.click(
        bind(roundtrip_realize, lab), [image, sketch, preparation, strength, label], realized, api_visibility="private"
    )
    if examples:
        gr.Examples(
            [[str(path)] for path in examples],
            inputs=[image],
            outputs=outputs,
            fn=handler,
            run_on_click=True,
            label="Fashion-MNIST test images (one per class)",
            api_visibility="private",
        )
