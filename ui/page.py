"""The whole page: the status line, one tab per module, the shared queue."""

from __future__ import annotations

import gradio as gr

from genmodels.lab import Lab

from . import denoise, edit, generate, interpolate, latent_map, patches, roundtrip, studio, texts, train
from .components import bind
from .files import OutputStore
from .guard import GuardedBlocks
from .serving import queue


def status_line(lab: Lab) -> str:
    """Where the models run and which did not load (without server paths), for the top of the page."""
    status = f"Running on **{lab.device}** with models: {', '.join(lab.models) or 'none'}."
    if lab.broken:
        status += " ⚠️ Not loaded: " + "; ".join(f"**{name}** ({why})" for name, why in lab.broken.items())
    return status + "".join(f"\n- {notice}" for notice in lab.notices)


async def ping() -> str:
    """Answer "pong" at once: a health check, and the server's own round trip for the speed benchmarks.

    A coroutine: it runs on the event loop, so it needs no worker thread and answers while every
    thread computes."""
    return "pong"


def build_demo(
    lab: Lab, store: OutputStore | None = None, training: dict | None = None, fast_file_checks: bool = False
) -> gr.Blocks:
    """Lay out the page for the models in `lab`, wire every event and set up the queue.

    `training`: the Train tab's limits (`slots`, `max_minutes`); None leaves the tab out.
    `fast_file_checks`: Gradio's file-access checks replaced by faster ones (`ui.patches`)."""
    store = store or OutputStore()
    patches.apply(fast_file_checks)
    with GuardedBlocks(title=texts.TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(texts.INTRO)
        gr.Markdown(status_line(lab), elem_id="status")
        with gr.Tab("Generate", id="generate"):
            generated = generate.render(lab)
        with gr.Tab("Round trip", id="roundtrip"):
            roundtrip.render(lab)
        with gr.Tab("Interpolate", id="interpolate"):
            pickers = [generated["model"], interpolate.render(lab, store)]
        with gr.Tab("Edit", id="edit"):
            edit.render(lab)
        with gr.Tab("Studio", id="studio"):
            pickers.append(studio.render(lab, store))
        with gr.Tab("Denoise", id="denoise"):
            pickers.append(denoise.render(lab, store))
        with gr.Tab("Map", id="map"):
            latent_map.render(lab, demo)
        if training is not None:
            with gr.Tab("Train", id="train"):
                runner = train.runner_for(lab, **training)
                train.render(lab, store, demo, pickers, generated["label"], runner)
        gr.api(ping, api_name="ping")
        # The page opens on its defaults' images, or a shared link's settings and theirs.
        opened = [*generated["settings"], *generated["shown"]]
        demo.load(bind(generate.open_link, lab), None, opened, api_visibility="private")
    queue(demo)
    return demo
