"""Map tab: the VAE's test-set latents flattened to 2-D; a click decodes that point."""

from __future__ import annotations

import logging

import gradio as gr
import numpy as np

from genmodels.data import CLASS_NAMES
from genmodels.images import CLASS_COLOURS, pixel_to_point
from genmodels.lab import Lab

from . import texts
from .components import bind, friendly

logger = logging.getLogger("app")


@friendly
def map_point(lab: Lab, x: float = 0.0, y: float = 0.0):
    """Decode a point of the VAE's 2-D latent map, and show the 8 test images mapped nearest to it.

    The map is a PCA of the test set's posterior means; (0, 0) is their average.

    Args:
        x: coordinate along the map's first principal axis.
        y: coordinate along the map's second principal axis.
    """
    image, neighbours, labels = lab.map_point(x, y)
    gallery = [(neighbour, CLASS_NAMES[label]) for neighbour, label in zip(neighbours, labels)]
    return image, gallery, f"Map point ({x:.2f}, {y:.2f})"


def show_map(lab: Lab) -> np.ndarray | None:
    """The map picture, or nothing when the VAE or the test set is not available."""
    try:
        return lab.map_picture()[0]
    except (ValueError, OSError) as exc:
        logger.warning("No latent map: %s", exc)
        return None


def map_click(lab: Lab, evt: gr.SelectData):
    """A click on the map image -> the decoded point (pixel to map coordinates first)."""
    _, bounds = lab.map_picture()
    x, y = pixel_to_point(evt.index[0], evt.index[1], bounds)
    return map_point(lab, x, y)


def legend() -> str:
    """Class colours of the map as HTML swatches."""
    swatches = [
        f'<span style="display:inline-block;width:12px;height:12px;background:rgb{tuple(int(v) for v in colour)}"></span> {name}'
        for name, colour in zip(CLASS_NAMES, CLASS_COLOURS)
    ]
    return " &nbsp; ".join(swatches)


def render(lab: Lab, demo: gr.Blocks) -> None:
    """Lay out the Map tab and wire its events (the picture is drawn when the page loads)."""
    gr.Markdown(texts.MAP)
    with gr.Row():
        with gr.Column(scale=3):
            picture = gr.Image(
                label="VAE latent map (PCA of the test set's posterior means)",
                format="png",
                interactive=False,
                elem_id="latent-map",
                buttons=["fullscreen"],
            )
            gr.Markdown(legend())
        with gr.Column(scale=2):
            decoded = gr.Image(label="This point, decoded", format="png", elem_classes="enlarge", height=260)
            where = gr.Markdown(elem_id="map-where")
            nearest = gr.Gallery(label="Nearest test images on the map", columns=4, format="png", height=240)
    outputs = [decoded, nearest, where]
    picture.select(bind(map_click, lab), None, outputs, api_visibility="private")
    # api_name="map_point" takes the coordinates for gradio_client; the page uses clicks.
    x, y, api_button = gr.Number(0.0, visible=False), gr.Number(0.0, visible=False), gr.Button(visible=False)
    api_button.click(bind(map_point, lab), [x, y], outputs, api_name="map_point")
    demo.load(bind(show_map, lab), None, picture, api_visibility="private")
