"""The app's handlers called directly: outputs, determinism, and plain errors for bad input."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from genmodels.registry import generative_names

EXAMPLE = sorted(app.EXAMPLES_DIR.glob("*.png"))[0]


def test_demo_is_built_at_import_with_the_bundled_models():
    assert isinstance(app.demo, gr.Blocks)
    assert app.lab.generative() == generative_names() and not app.lab.broken


def test_generate_gives_grid_gallery_and_download():
    grid, download, compare = app.generate("dcgan", 3, 6)
    assert grid.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert Image.open(download).size == (3 * 30 + 2, 2 * 30 + 2)
    assert compare["visible"] is False
    again = app.generate("dcgan", 3, 6)
    assert np.array_equal(grid, again[0]) and again[1] == download
    gallery = app.singles("dcgan", 3, 6)
    assert len(gallery) == 6 and gallery[0][1] == "seed 3" and gallery[0][0].shape == (28, 28)
    assert np.array_equal(gallery[4][0], grid[32:60, 32:60]), "image 4 is the grid's row 1, column 1"


def test_model_card_panel_names_the_model():
    assert app.model_card("dcgan").startswith("**dcgan**")
    assert app.model_card("nope") == ""


def test_compare_shows_every_generative_model():
    *_, compare = app.generate("vae", 0, 4, compare=True)
    assert compare["visible"] is True
    assert [caption for _, caption in compare["value"]] == app.lab.generative()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": float("nan")},
        {"seed": -1},
        {"num": 0},
        {"num": 10_000},
        {"truncation": float("inf")},
        {"model": "nope"},
    ],
)
def test_generate_refuses_bad_numbers(kwargs):
    arguments = {"model": "dcgan", "seed": 0, "num": 4, **kwargs}
    with pytest.raises(gr.Error):
        app.generate(**arguments)


def test_roundtrip_from_a_file_and_from_a_drawing():
    steps, slider, heat, summary, plot, samples = app.roundtrip(str(EXAMPLE))
    assert [name.split(". ", 1)[1] for _, name in steps][-1].startswith("resized to 28x28")
    assert slider[0].shape == slider[1].shape == (28, 28)
    assert heat.shape == (28, 28, 3) and "PSNR" in summary
    assert set(plot["statistic"]) == {"mean", "standard deviation"} and len(samples) == 8

    canvas = np.zeros((400, 400, 4), np.uint8)
    canvas[100:300, 150:250] = (0, 0, 0, 255)  # a dark block drawn on a transparent layer
    steps, *_ = app.roundtrip(None, {"composite": canvas, "background": None, "layers": []})
    assert any("inverted" in name for _, name in steps)


@pytest.mark.parametrize(
    "image, words",
    [
        (None, "Upload"),
        (b"not an image at all", "not an image"),
        (b"", "empty"),
    ],
)
def test_roundtrip_refuses_bad_uploads(image, words):
    with pytest.raises(gr.Error, match=words):
        app.roundtrip(image)


def test_interpolate_gives_strip_and_gif():
    strip, animation, download = app.interpolate("dcgan", 0, 1, 5, "slerp")
    assert strip.shape == (28, 5 * 28 + 4 * 2)
    gif = Image.open(download)
    assert animation == download and gif.n_frames == 2 * 5 - 2
    with pytest.raises(gr.Error):
        app.interpolate("dcgan", 0, 1, 64)
    with pytest.raises(gr.Error, match="no encoder"):
        app.interpolate("dcgan", 0, 1, 4, image_a=str(EXAMPLE))
    strip, *_ = app.interpolate("vae", 0, 1, 4, "lerp", str(EXAMPLE), None)
    assert strip.shape[0] == 28


def test_edit_previews_and_projects():
    prepared, edited, (before, after) = app.edit(str(EXAMPLE), angle=90, flip_h=True)
    assert prepared.shape == edited.shape == before.shape == after.shape == (28, 28)
    assert not np.array_equal(prepared, edited)
    assert np.array_equal(app.edit(str(EXAMPLE))[1], prepared), "no edit, no change"
    with pytest.raises(gr.Error):
        app.edit(str(EXAMPLE), scale=float("nan"))
    with pytest.raises(gr.Error, match="Upload"):
        app.edit(None)


def test_output_files_are_kept_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(app, "OUTPUT_DIR", tmp_path)
    monkeypatch.setattr(app, "MAX_OUTPUT_FILES", 3)
    monkeypatch.setattr(app, "PRUNE_EVERY", 1)
    for i in range(6):
        app.save_output(bytes([i]), ".png")
    assert len(list(tmp_path.glob("*.png"))) == 6, "files younger than OUTPUT_MIN_AGE_S are never evicted"
    monkeypatch.setattr(app, "OUTPUT_MIN_AGE_S", 0)
    app.save_output(bytes([6]), ".png")
    assert len(list(tmp_path.glob("*.png"))) == 3
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file left behind"


def test_output_files_handed_out_survive_concurrent_requests(tmp_path, monkeypatch):
    """A picture asked for again is rewritten as the newest file, so eviction cannot take it while
    Gradio copies it; many threads writing the same picture at once all get a whole file."""
    monkeypatch.setattr(app, "OUTPUT_DIR", tmp_path)
    monkeypatch.setattr(app, "MAX_OUTPUT_FILES", 2)
    monkeypatch.setattr(app, "PRUNE_EVERY", 1)
    monkeypatch.setattr(app, "OUTPUT_MIN_AGE_S", 0)
    first = Path(app.save_output(b"first", ".gif"))
    os.utime(first, (1, 1))  # the oldest file in the folder
    app.save_output(b"second", ".gif")
    assert Path(app.save_output(b"first", ".gif")).exists()
    app.save_output(b"third", ".gif")
    assert first.exists(), "the picture handed out again was the newest, so another went first"

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda i: app.save_output(b"same picture" * 1000, ".gif"), range(32)))
    assert len(set(paths)) == 1 and Path(paths[0]).read_bytes() == b"same picture" * 1000


def test_masked_regeneration_from_the_editor_and_the_undo_history():
    editor = app.editor_from_seed("dcgan", 3)
    assert editor["background"].shape == (280, 280)
    layer = np.zeros((280, 280, 4), np.uint8)
    layer[:, 140:, 3] = 255  # paint the right half
    editor["layers"] = [layer]
    (before, after), generated, info = app.inpaint_editor(editor, "vae")
    assert np.array_equal(before[:, :14], after[:, :14]), "the unpainted half is kept"
    assert generated.shape == (28, 28) and "PSNR" in info
    shown, history = app.record_pair((before, after), [])
    assert len(history) == 1 and np.array_equal(shown[1], after)
    with pytest.raises(gr.Error, match="Paint"):
        app.inpaint_editor({**editor, "layers": []}, "vae")
    strip, result = app.arithmetic("vae", "Sneaker", "Sandal", "seed 3")
    shown, history = app.record_arithmetic(strip, result, history)
    assert len(history) == 2 and np.array_equal(shown[0], strip[:, :28])
    previous, _, history = app.studio_undo(history)
    assert len(history) == 1 and np.array_equal(previous[1], after)


def test_every_action_but_ping_waits_in_one_first_come_line():
    groups = {(fn.concurrency_id, fn.concurrency_limit) for fn in app.demo.fns.values() if fn.api_name != "ping"}
    assert groups == {("compute", app.MAX_THREADS)}
    (ping,) = [fn for fn in app.demo.fns.values() if fn.api_name == "ping"]
    assert ping.concurrency_id != "compute", "a health check never waits behind the computations"
