"""The page's handlers called directly with a lab: outputs, determinism, plain errors, the file store."""

from __future__ import annotations

import base64
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from genmodels.data import EXAMPLES_DIR
from genmodels.lab import Lab
from ui import edit, generate, interpolate, roundtrip, studio
from ui.files import OutputStore
from ui.page import build_demo, status_line
from ui.patches import GRADIO_FILE_CHECKS, is_allowed_file, is_in_or_equal
from ui.serving import BLOCKED_PATHS, COMPUTING, QUEUE_POLL_S

EXAMPLE = str(sorted(EXAMPLES_DIR.glob("*.png"))[0])


@pytest.fixture(scope="module")
def lab():
    return Lab("cpu")


@pytest.fixture
def store(tmp_path):
    return OutputStore(tmp_path)


def test_generate_gives_grid_and_gallery(lab):
    picture, compare = generate.generate(lab, "dcgan", 3, 6)
    assert picture.shape == (2 * 30 + 2, 3 * 30 + 2), "6 tiles of 28 px in 3 columns, 2 px gaps and border"
    assert compare == [], "no comparison unless asked for"
    again = generate.generate(lab, "dcgan", 3, 6)
    assert np.array_equal(picture, again[0])
    gallery = generate.singles(lab, "dcgan", 3, 6)
    assert len(gallery) == 6 and gallery[0][1] == "seed 3" and gallery[0][0].shape == (28, 28)
    assert np.array_equal(gallery[4][0], picture[32:60, 32:60]), "image 4 is the grid's row 1, column 1"
    assert np.array_equal(generate.singles(lab, "dcgan", 7, 1)[0][0], gallery[4][0]), "image 4 of seed 3 is seed 7"


def test_model_card_panel_names_the_model(lab):
    from genmodels.hub import card_metrics
    from genmodels.registry import MODELS

    card = generate.model_card(lab, "dcgan")
    fidc = card_metrics(MODELS["dcgan"].checkpoint_path)["FIDc"]  # the checkpoint's own card, not a copy
    assert card.startswith("**dcgan**") and f"FIDc {fidc:.2f}" in card, card
    assert generate.model_card(lab, "nope") == ""


def test_compare_shows_every_generative_model(lab, store):
    *_, compare = generate.generate(lab, "vae", 0, 4, compare=True)
    assert [caption for _, caption in compare] == lab.generative()
    assert generate.show_if(True)["visible"] and not generate.show_if(False)["visible"], "the checkbox shows it"
    # "any class" is flow's alone: the comparison leaves out the cGAN, which needs a class.
    *_, compare = generate.generate(lab, "flow", 0, 4, compare=True, label="any class")
    assert [caption for _, caption in compare] == ["dcgan", "vae", "flow"]
    with pytest.raises(gr.Error, match="class"):
        generate.generate(lab, "cgan", 0, 4, label="any class")


def test_flow_steps_and_guidance_reach_the_model(lab, store):
    grids = {
        settings: generate.generate(lab, "flow", 5, 4, label="Bag", steps=settings[0], guidance=settings[1])[0]
        for settings in ((8, 1.5), (4, 1.5), (8, 0.0))
    }
    assert len({grid.tobytes() for grid in grids.values()}) == 3
    unguided = generate.generate(lab, "flow", 5, 4, label="Sneaker", steps=8, guidance=0.0)[0]
    assert np.array_equal(unguided, grids[(8, 0.0)]), "guidance 0 ignores the class"
    row = studio.every_class(lab, "flow", 5, label="any class")
    assert row.shape == (28, 10 * 30 - 2), "ten 28 px images, 2 px apart"
    single = generate.singles(lab, "flow", 5, 1, label="Bag")[0][0]
    assert np.abs(row[:, 8 * 30 : 8 * 30 + 28].astype(int) - single).max() <= 8, "class 8, up to batch rounding"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": float("nan")},
        {"seed": -1},
        {"num": 0},
        {"num": 10_000},
        {"truncation": float("inf")},
        {"model": "nope"},
        {"model": "flow", "steps": 0},
        {"model": "flow", "steps": 2.5},
        {"model": "flow", "guidance": -1},
    ],
)
def test_generate_refuses_bad_numbers(lab, store, kwargs):
    arguments = {"model": "dcgan", "seed": 0, "num": 4, **kwargs}
    with pytest.raises(gr.Error):
        generate.generate(lab, **arguments)


def test_settings_json_round_trip_and_plain_refusals(lab):
    text = generate.settings(lab, "cgan", 3, 4, 0.5, 1.0, "Bag")
    sampling = lab.model("flow").sampling  # the flow's knobs left out: the checkpoint's own defaults
    assert generate.load_settings(lab, text) == ("cgan", 3, 4, 0.5, 1.0, "Bag", sampling.steps, sampling.guidance)
    text = generate.settings(lab, "flow", 3, 4, 0.5, 1.0, "any class", 6, 2.0)
    assert generate.load_settings(lab, text) == ("flow", 3, 4, 0.5, 1.0, "any class", 6, 2.0)
    for bad, words in [('{"seeed": 1}', "Unknown setting"), ("3", "JSON object"), ("[" * 100_000, "at most")]:
        with pytest.raises(gr.Error, match=words):
            generate.load_settings(lab, bad)


def test_roundtrip_from_a_file_and_from_a_drawing(lab):
    steps, slider, heat, summary, plot, samples = roundtrip.roundtrip(lab, EXAMPLE)
    assert steps == [], "a test image reaches the model as it is: no step to show beside 'before'"
    assert "Used as it is" in summary and "against the prepared 28x28 image" in summary
    expected = lab.roundtrip(roundtrip.read_upload(EXAMPLE, "", "auto").image, 0)
    assert np.array_equal(slider[0], np.asarray(Image.open(EXAMPLE))), "before: the test image as it is"
    assert np.array_equal(slider[1], expected.reconstruction) and heat.shape == (28, 28, 3)
    assert f"PSNR {expected.psnr:.1f} dB" in summary, summary
    assert set(plot["statistic"]) == {"mean", "standard deviation"}
    assert np.array_equal(samples[:, 30:58], expected.samples[1]) and samples.shape == (28, 8 * 30 - 2)

    canvas = np.zeros((400, 400, 4), np.uint8)
    canvas[100:300, 150:250] = (0, 0, 0, 255)  # a dark block drawn on a transparent layer
    steps, *_ = roundtrip.roundtrip(lab, None, {"composite": canvas, "background": None, "layers": []})
    assert any("inverted" in name for _, name in steps)


@pytest.mark.parametrize("image, words", [(None, "Upload"), (b"not an image at all", "not an image"), (b"", "empty")])
def test_roundtrip_refuses_bad_uploads(lab, image, words):
    with pytest.raises(gr.Error, match=words):
        roundtrip.roundtrip(lab, image)


def test_interpolate_gives_strip_and_a_boomerang_gif(lab, store):
    strip, animation = interpolate.interpolate(lab, store, "dcgan", 0, 1, 5, "slerp")
    assert strip.shape == (28, 5 * 28 + 4 * 2)
    frames = Image.open(animation)
    # Forward 0 1 2 3 4, then back 3 2 1 (the ends are not repeated): 8 frames, and frame 5 is frame 3.
    assert frames.n_frames == 8
    frames.seek(3)
    third = np.asarray(frames.convert("L"))
    frames.seek(5)
    assert np.array_equal(third, np.asarray(frames.convert("L")))
    with pytest.raises(gr.Error):
        interpolate.interpolate(lab, store, "dcgan", 0, 1, 64)
    with pytest.raises(gr.Error, match="no encoder"):
        interpolate.interpolate(lab, store, "dcgan", 0, 1, 4, image_a=EXAMPLE)
    strip, *_ = interpolate.interpolate(lab, store, "vae", 0, 1, 4, "lerp", EXAMPLE, None)
    reconstruction = lab.roundtrip(np.asarray(Image.open(EXAMPLE))).reconstruction
    assert np.array_equal(strip[:, :28], reconstruction), "A is the uploaded picture's latent"


def test_edit_previews_and_projects(lab):
    prepared, edited, (before, after) = edit.edit(lab, EXAMPLE, angle=180)
    assert np.array_equal(prepared, np.asarray(Image.open(EXAMPLE))) and np.array_equal(before, edited)
    assert np.array_equal(edited, prepared[::-1, ::-1]), "a half turn is both flips, pixel for pixel"
    assert np.array_equal(after, lab.roundtrip(edited).reconstruction), "projected: the VAE's reconstruction"
    assert np.array_equal(edit.edit(lab, EXAMPLE)[1], prepared), "no edit, no change"
    with pytest.raises(gr.Error):
        edit.edit(lab, EXAMPLE, scale=float("nan"))
    with pytest.raises(gr.Error, match="Upload"):
        edit.edit(lab, None)


def test_output_files_are_kept_bounded(tmp_path):
    store = OutputStore(tmp_path, max_files=3, min_age_s=600)
    for i in range(6):
        store.save(bytes([i]), ".png")
    store.prune(".png")
    assert len(list(tmp_path.glob("*.png"))) == 6, "files younger than min_age_s are never evicted"
    store.min_age_s = 0
    store.prune(".png")
    assert len(list(tmp_path.glob("*.png"))) == 3
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file left behind"


def test_output_files_handed_out_survive_concurrent_requests(tmp_path):
    """A picture asked for again is rewritten as the newest file, so eviction cannot take it while
    Gradio copies it; many threads writing the same picture at once all get a whole file."""
    store = OutputStore(tmp_path, max_files=2, min_age_s=0)
    first = Path(store.save(b"first", ".gif"))
    os.utime(first, (1, 1))  # the oldest file in the folder
    store.save(b"second", ".gif")
    assert Path(store.save(b"first", ".gif")).exists()
    store.save(b"third", ".gif")
    store.prune(".gif")
    assert first.exists(), "the picture handed out again was the newest, so another went first"

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda i: store.save(b"same picture" * 1000, ".gif"), range(32)))
    assert len(set(paths)) == 1 and Path(paths[0]).read_bytes() == b"same picture" * 1000


def test_masked_regeneration_and_the_undo_history(lab):
    editor = studio.editor_from_seed(lab, "dcgan", 3)
    assert editor["background"].shape == (280, 280)
    layer = np.zeros((280, 280, 4), np.uint8)
    layer[:, 140:, 3] = 255  # paint the right half
    editor["layers"] = [layer]
    (before, after), generated, info = studio.inpaint_editor(lab, editor, "vae")
    assert np.array_equal(before[:, :14], after[:, :14]), "the unpainted half is kept"
    assert not np.array_equal(before[:, 14:], after[:, 14:]), "the painted half is redrawn"
    assert generated.shape == (28, 28) and "PSNR" in info
    shown, history = studio.record_pair((before, after), [])
    assert len(history) == 1 and np.array_equal(shown[1], after)
    with pytest.raises(gr.Error, match="Paint"):
        studio.inpaint_editor(lab, {**editor, "layers": []}, "vae")
    strip, result = studio.arithmetic(lab, "vae", "Sneaker", "Sandal", "seed 3")
    shown, history = studio.record_arithmetic(strip, result, history)
    assert len(history) == 2 and np.array_equal(shown[0], strip[:, :28]) and np.array_equal(shown[1], result)
    previous, message, history = studio.studio_undo(history)
    assert len(history) == 1 and np.array_equal(previous[1], after) and "result 1" in message
    previous, _, history = studio.studio_undo(history)
    assert len(history) == 1 and np.array_equal(previous[1], after), "the first result stays"


def test_every_action_but_ping_waits_in_one_first_come_line(lab):
    demo = build_demo(lab)
    groups = {(fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values() if fn.api_name != "ping"}
    assert groups == {("compute", COMPUTING)}
    (ping,) = [fn for fn in demo.fns.values() if fn.api_name == "ping"]
    assert ping.concurrency_id != "compute", "a health check never waits behind the computations"
    assert demo._queue.sleep_when_free == QUEUE_POLL_S


def test_the_faster_file_checks_give_gradios_answers(tmp_path):
    """Ours resolve each folder once; Gradio's (the reference) resolve everything every time."""
    gradio_is_in_or_equal, gradio_is_allowed_file = GRADIO_FILE_CHECKS
    cache, other = tmp_path / "cache", tmp_path / "other"
    (cache / "abc").mkdir(parents=True)
    other.mkdir()
    (cache / "abc" / "image.png").write_bytes(b"x")
    (cache / "link.png").symlink_to(Path(BLOCKED_PATHS[0]) / "dcgan-fashion" / "model.safetensors")
    (cache / "folder-link").symlink_to(other)
    blocked = Path(BLOCKED_PATHS[0])
    paths = [
        cache / "abc" / "image.png",
        cache / "link.png",
        cache / "folder-link" / "x.png",
        f"{cache}/abc/../../other/x.png",
        cache,
        other / "x.png",
        blocked / "dcgan-fashion" / "model.safetensors",
        str(blocked).upper() + "/x",
        f"{cache}/../../{blocked}/x",
        Path(os.getcwd()) / "app.py",
        "relative/file.png",
        "/etc/passwd",
    ]
    lists = [(BLOCKED_PATHS, [], [str(cache)]), (BLOCKED_PATHS, [os.getcwd(), str(tmp_path)], [str(cache)])]
    for path in paths:
        assert is_in_or_equal(path, cache) == gradio_is_in_or_equal(path, cache), path
        for blocked_paths, allowed_paths, created_paths in lists:
            ours = is_allowed_file(Path(path), blocked_paths, allowed_paths, created_paths)
            assert ours == gradio_is_allowed_file(Path(path), blocked_paths, allowed_paths, created_paths), path
    assert is_allowed_file(cache / "link.png", BLOCKED_PATHS, [], [str(cache)]) == (False, "in_blocklist")


def test_status_line_names_what_did_not_load_without_server_paths(tmp_path):
    broken = Lab("cpu", {"vae": tmp_path / "missing"})
    line = status_line(broken)
    assert "**vae**" in line and "missing" in line and str(tmp_path) not in line


def test_pasted_images_arrive_as_bytes_or_get_a_sentence():
    from types import SimpleNamespace

    from ui.components import Upload

    upload = Upload()
    png = (EXAMPLES_DIR / Path(EXAMPLE).name).read_bytes()
    pasted = SimpleNamespace(path=None, url="data:image/png;base64," + base64.b64encode(png).decode())
    assert upload.preprocess(pasted) == png
    for url, words in [
        ("data:image/png;base64", "not a valid data URL"),
        ("data:,@@@", "not a valid data URL"),
        ("data:image/png;base64," + "A" * (30 * 2**20), "over 20 MB"),
    ]:
        with pytest.raises(gr.Error, match=words):
            upload.preprocess(SimpleNamespace(path=None, url=url))


def test_gradio_patches_apply_once_for_their_version_and_the_docs_table_lists_each(lab, monkeypatch):
    """The patches are applied by building a page, once; the file-check one only when asked; a Gradio
    other than the one they were written for is refused; docs/serving.md's table names each."""
    from gradio import processing_utils, utils

    from ui import patches

    build_demo(lab)
    first = processing_utils.save_pil_to_cache
    build_demo(lab)
    assert processing_utils.save_pil_to_cache is first is patches.save_pil_to_cache
    assert {"atomic_cache_writes", "mcp_results", "mcp_file_inputs"} <= patches.applied()
    if "use_fast_file_checks" not in patches.applied():  # (only `python app.py --fast-file-checks` asks)
        assert (utils.is_in_or_equal, utils.is_allowed_file) == GRADIO_FILE_CHECKS, "Gradio's own checks by default"
    table = (Path(__file__).parent.parent / "docs" / "serving.md").read_text().split("## Changes to Gradio")[1]
    assert set(re.findall(r"^\| `(\w+)`", table, re.MULTILINE)) == set(patches.PATCHES)
    monkeypatch.setattr(gr, "__version__", "7.0.0")
    with pytest.raises(RuntimeError, match="written for Gradio 6.31.0, found 7.0.0"):
        patches.apply()


def test_every_tab_opens_on_a_result_and_generate_on_the_best_model(lab):
    """Each tab's main output holds its defaults' result when the page is built (no request needed);
    Generate opens on the model whose card has the lowest FIDc, with its knobs shown."""
    from genmodels.hub import card_metrics
    from genmodels.registry import MODELS

    demo = build_demo(lab)
    blocks = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    for elem_id in (
        "generate-grid",
        "roundtrip-slider",
        "interpolate-strip",
        "edit-slider",
        "studio-slider",
        "denoise-picture",
    ):
        assert blocks[elem_id].value, f"{elem_id} opens empty"
    fidc = {
        name: card_metrics(entry.checkpoint_path)["FIDc"]
        for name, entry in MODELS.items()
        if entry.generative and "FIDc" in card_metrics(entry.checkpoint_path)
    }
    best = min(fidc, key=fidc.get)
    assert blocks["generate-model"].value == best
    assert blocks["generate-steps"].visible == MODELS[best].denoises, "the best model's own knobs are shown"
    assert "**Inverted" not in blocks["studio-info"].value and "Seed 0" in blocks["studio-info"].value


def test_the_page_intro_names_every_tab(lab):
    from ui import texts

    demo = build_demo(lab, training={"slots": 1, "max_minutes": 1})
    tabs = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert len(tabs) == 8 and all(f"**{tab}**" in texts.INTRO for tab in tabs), tabs


def test_the_train_tabs_figures_are_the_measured_ones():
    """The FIDc the Train tab's help quotes after 30 s, 2 and 5 minutes are docs/training.md's table."""
    from ui import texts

    table = (Path(__file__).parent.parent / "docs" / "training.md").read_text()
    rows = re.findall(r"^\| ([A-Za-z]*)[^|]*\| (30 s|1 min|2 min|5 min) \|[^|]*\|[^|]*\| ([\d.]+) \|$", table, re.M)
    measured, family = {}, None
    for name, budget, fidc in rows:
        family = name.lower() or family
        measured[(family, budget)] = round(float(fidc))
    assert len(measured) == 12, measured
    quoted = re.search(r"VAE ([\d /]+), DCGAN ([\d /]+), flow ([\d /]+) after 30 s / 2 min / 5 min", texts.TRAIN)
    for family, numbers in zip(("vae", "dcgan", "flow"), quoted.groups()):
        expected = [measured[(family, budget)] for budget in ("30 s", "2 min", "5 min")]
        assert [int(n) for n in numbers.split(" / ")] == expected, family
