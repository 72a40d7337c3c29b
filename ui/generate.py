"""Generate tab: a grid from seeds, the single images, "compare" across models, and shareable settings."""

from __future__ import annotations

import random

import gradio as gr

from genmodels.data import CLASS_NAMES
from genmodels.images import grid
from genmodels.lab import Lab
from genmodels.limits import MAX_APP_SEED, MAX_GUIDANCE, MAX_IMAGES, MAX_SAMPLING_STEPS, MAX_TEMPERATURE, MAX_TRUNCATION
from genmodels.registry import entry_of
from genmodels.settings import DEFAULTS, check_settings, parse_settings, settings_json

from . import texts
from .components import (
    LIVE,
    bind,
    class_choices,
    class_of,
    first_sight,
    flow_sampling,
    friendly,
    label_visibility,
    to_uint8_list,
)

# Runs in the browser: the page's address with the settings as query parameters, copied to the clipboard.
LINK_JS = """
(model, seed, num, truncation, temperature, label, steps, guidance) => {
  const url = new URL(window.location.href);
  url.search = new URLSearchParams({model, seed, num, truncation, temperature, label, steps, guidance}).toString();
  url.hash = "";
  navigator.clipboard?.writeText(url.toString()).catch(() => {});
  return url.toString();
}
"""


@friendly
def generate(
    lab: Lab,
    model: str,
    seed: int,
    num: int = 16,
    truncation: float = 0.0,
    temperature: float = 1.0,
    compare: bool = False,
    label: str = CLASS_NAMES[0],
    steps: int | None = None,
    guidance: float | None = None,
):
    """Generate images of clothes from random seeds with one of the lab's models, as a grid.

    Image i comes from seed seed + i, so the same settings always give the same pixels. Returns the grid
    (28x28 tiles, a PNG file) and with `compare` the same seeds through every model.

    Args:
        model: which generative model draws the images (dcgan, vae, cgan or flow).
        seed: random seed of the first image, a whole number from 0.
        num: how many images, 1 to 64.
        truncation: GANs only: redraw latent values larger than this (0 = off, up to 4); lower is cleaner.
        temperature: VAE only: scale of the latent draw (0 to 3); lower is more typical.
        compare: also return the same seeds through every model.
        label: the class the cGAN and flow draw (T-shirt/top, Trouser, ..., Ankle boot; "any class" for flow alone).
        steps: flow only: ODE steps from noise to image (1 to 50); more is slower and closer to the exact path.
        guidance: flow only: classifier-free guidance (0 = ignore the class, 1 = plain conditional, up to 5),
            above 1 applied on the least noisy part of the path only (t <= the checkpoint's guidance_below).
    """
    knobs = (truncation, temperature, class_of(label), steps, guidance)
    tiles = grid(lab.generate(model, seed, num, *knobs))
    comparison = []
    if compare:
        for name in lab.generative():
            if name == model:  # already drawn above (for flow, a whole ODE run saved)
                comparison.append((tiles, name))
            elif label in class_choices(name) or not entry_of(name).conditional:
                comparison.append((grid(lab.generate(name, seed, num, *knobs)), name))
    return tiles, comparison


@friendly
def singles(
    lab: Lab,
    model: str,
    seed: int,
    num: int = 16,
    truncation: float = 0.0,
    temperature: float = 1.0,
    compare: bool = False,
    label: str = CLASS_NAMES[0],
    steps: int | None = None,
    guidance: float | None = None,
):
    """The images of `generate` one by one, captioned with their seeds (the page's gallery).

    A second event after `generate`, so the API call returns the grid without encoding each image.
    """
    return captioned(lab.generate(model, seed, num, truncation, temperature, class_of(label), steps, guidance), seed)


def captioned(images, seed: int) -> list[tuple]:
    """Images (N, 1, 28, 28) as the gallery shows them: uint8 pictures captioned with their seeds."""
    return [(image, f"seed {int(seed) + i}") for i, image in enumerate(to_uint8_list(images))]


@friendly
def drawn(
    lab: Lab, model: str, seed: int, num: int, truncation: float, temperature: float, label: str, steps, guidance
):
    """The grid and the captioned single images of one draw, from one `Lab.generate`: what the page shows
    without a click (its defaults when it is built, a shared link's settings on load)."""
    images = lab.generate(model, seed, num, truncation, temperature, class_of(label), steps, guidance)
    return grid(images), captioned(images, seed)


def setting_values(lab: Lab, settings: dict) -> tuple:
    """Checked settings as the Generate controls' values, in DEFAULTS' order (steps and guidance left
    out take the flow checkpoint's)."""
    sampling = flow_sampling(lab)
    filled = {"steps": sampling.steps, "guidance": sampling.guidance}
    return tuple(filled[key] if settings[key] is None and key in filled else settings[key] for key in DEFAULTS)


@friendly
def settings(
    lab: Lab,
    model: str,
    seed: int,
    num: int,
    truncation: float,
    temperature: float,
    label: str,
    steps: int | None = None,
    guidance: float | None = None,
) -> str:
    """The Generate settings as one line of JSON, checked, to save or share and load back later.

    Args:
        model: the generative model (dcgan, vae, cgan or flow).
        seed: random seed of the first image.
        num: how many images, 1 to 64.
        truncation: GANs' truncation (0 = off).
        temperature: the VAE's temperature.
        label: the class of the cGAN and flow ("any class": flow alone).
        steps: flow's ODE steps.
        guidance: flow's classifier-free guidance.
    """
    values = dict(zip(DEFAULTS, (model, seed, num, truncation, temperature, label, steps, guidance)))
    return settings_json(values, models_best_first(lab))


@friendly
def load_settings(lab: Lab, text: str) -> tuple:
    """Check settings JSON (as the settings action writes it) and return them as the Generate controls' values.

    Args:
        text: a JSON object with any of model, seed, num, truncation, temperature, label, steps and guidance.
    """
    return setting_values(lab, parse_settings(text, models_best_first(lab)))


def open_link(lab: Lab, request: gr.Request):
    """On page load, a shared link's settings (?model=cgan&seed=3...) and their images; without any,
    nothing to do: the page already shows its defaults' images, made once when it was built."""
    params = dict(request.query_params) if request is not None else {}
    params = {key: value for key, value in params.items() if key in DEFAULTS}
    skip = tuple(gr.skip() for _ in range(len(DEFAULTS) + 3))
    if not params:
        return skip
    try:
        values = setting_values(lab, check_settings(params, models_best_first(lab)))
    except ValueError as exc:
        gr.Warning(f"The link's settings were not applied: {exc}")
        return skip
    tiles, gallery = drawn(lab, *values)
    return (*values, tiles, [], gallery)


def models_best_first(lab: Lab) -> list[str]:
    """The generative models, the one Generate opens on (`Lab.best_generative`) first."""
    best = lab.best_generative()
    return [best] + [name for name in lab.generative() if name != best] if best else []


def random_seed() -> int:
    """A fresh seed for the dice button (randomness here is the point; everything after is seeded)."""
    return random.randint(0, 2**31 - 1)


def model_card(lab: Lab, model: str) -> str:
    """A few lines on the chosen model: what it is and its measured quality (from its model card)."""
    entry = entry_of(model)
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


def knob_visibility(model: str, label: str | None = None):
    """Show the controls that apply to `model`: truncation, temperature or the ODE's steps and guidance,
    and the class picker with the classes it takes."""
    entry = entry_of(model)
    knob = entry.sample_knob if entry else None
    return (
        gr.update(visible=knob == "truncation"),
        gr.update(visible=knob == "temperature"),
        gr.update(visible=knob == "guidance"),
        gr.update(visible=knob == "guidance"),
        label_visibility(model, label),
    )


def show_if(visible: bool) -> dict:
    """Show or hide a component."""
    return gr.update(visible=bool(visible))


def render(lab: Lab) -> dict:
    """Lay out the Generate tab and wire its events; returns what the page wires on load."""
    generative = lab.generative()
    default_model = lab.best_generative()  # the lowest FIDc in its model card
    entry = entry_of(default_model)
    knob = entry.sample_knob if entry else None
    sampling = flow_sampling(lab)  # the flow checkpoint's steps and guidance
    defaults = dict(DEFAULTS, model=default_model, steps=sampling.steps, guidance=sampling.guidance)
    shown = first_sight(bind(drawn, lab), *[defaults[key] for key in DEFAULTS]) or (None, None)
    gr.Markdown(texts.GENERATE.format(guidance_below=sampling.guidance_below))
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(generative, value=default_model, label="Model", elem_id="generate-model")
            card = gr.Markdown(model_card(lab, default_model), elem_id="model-card")
            with gr.Row():
                seed = gr.Number(
                    0, label="Seed", precision=0, minimum=0, maximum=MAX_APP_SEED, scale=3, elem_id="generate-seed"
                )
                dice = gr.Button("🎲 Random", scale=1, min_width=60)
            num = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images", elem_id="generate-num")
            truncation = gr.Slider(
                0, MAX_TRUNCATION, value=0, step=0.05, label="Truncation (0 = off)", visible=knob == "truncation"
            )
            temperature = gr.Slider(
                0, MAX_TEMPERATURE, value=1, step=0.05, label="Temperature", visible=knob == "temperature"
            )
            steps = gr.Slider(
                1,
                MAX_SAMPLING_STEPS,
                value=sampling.steps,
                step=1,
                label="Steps (ODE)",
                visible=bool(entry and entry.denoises),
                elem_id="generate-steps",
            )
            guidance = gr.Slider(
                0,
                MAX_GUIDANCE,
                value=sampling.guidance,
                step=0.1,
                label="Guidance",
                visible=bool(entry and entry.denoises),
                elem_id="generate-guidance",
            )
            label = gr.Dropdown(
                class_choices(default_model),
                value=CLASS_NAMES[0],
                label="Class",
                visible=bool(entry and entry.conditional),
            )
            compare = gr.Checkbox(
                False, label="Compare: the same seeds through every model", elem_id="generate-compare"
            )
            run = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Accordion("Share these settings", open=False, elem_id="share"):
                link_button = gr.Button("🔗 Link to this result", size="sm", elem_id="link-button")
                link = gr.Textbox(
                    label="Link (copied): opening it restores the model, seed and settings",
                    buttons=["copy"],
                    elem_id="share-link",
                )
                settings_text = gr.Code(language="json", label="Settings as JSON", elem_id="settings-json")
                with gr.Row():
                    copy = gr.Button("Copy settings as JSON", size="sm", elem_id="copy-settings")
                    load = gr.Button("Load these settings", size="sm", elem_id="load-settings")
        with gr.Column(scale=2):
            picture = gr.Image(
                shown[0],
                label="Grid",
                format="png",
                elem_id="generate-grid",
                elem_classes="enlarge",
                buttons=["download", "fullscreen"],
                height=480,
            )
            comparison = gr.Gallery(
                label="Compare", columns=3, visible=False, format="png", elem_id="generate-comparison"
            )
            gallery = gr.Gallery(
                shown[1], label="Single images", columns=8, format="png", height=320, elem_id="generate-gallery"
            )

    inputs = [model, seed, num, truncation, temperature, compare, label, steps, guidance]
    outputs = [picture, comparison]
    controls = [model, seed, num, truncation, temperature, label, steps, guidance]

    def on_generate(trigger, gallery_too: bool = True, **options) -> None:
        """Wire `trigger` to generate, then (unless live) to the gallery of single images."""
        event = trigger(bind(generate, lab), inputs, outputs, **options)
        if gallery_too:
            event.success(bind(singles, lab), inputs, gallery, api_visibility="private")

    on_generate(run.click, api_name="generate")
    on_generate(dice.click(random_seed, None, seed, api_visibility="private").then, api_visibility="private")
    model.change(
        knob_visibility, [model, label], [truncation, temperature, steps, guidance, label], api_visibility="private"
    )
    model.change(bind(model_card, lab), model, card, api_visibility="private")
    # Live: the grid follows the controls while they move, no button needed (see components.LIVE).
    on_generate(label.change, **LIVE)
    for slider in (num, truncation, temperature, steps, guidance):
        on_generate(slider.input, gallery_too=False, **LIVE)  # while it moves: the grid alone
        on_generate(slider.release, **LIVE)  # where it stops: the single images too
    on_generate(seed.submit, **LIVE)
    on_generate(compare.change, **LIVE)
    # Shown or hidden by the checkbox itself, not by each answer: a gr.update() in an answer makes Gradio
    # rebuild the component's config and JSON schema on every request (a tenth of a generate's CPU).
    compare.change(show_if, compare, comparison, api_visibility="private", show_progress="hidden", queue=False)
    link_button.click(None, controls, link, js=LINK_JS)
    copy.click(bind(settings, lab), controls, settings_text, api_name="settings")
    loaded = load.click(bind(load_settings, lab), settings_text, controls, api_name="load_settings")
    on_generate(loaded.success, api_visibility="private")
    return {"settings": controls, "shown": [picture, comparison, gallery], "model": model, "label": label}
