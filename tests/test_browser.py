"""A real browser (Debian's Chromium driven by Playwright) opens every tab and runs its main action.

Screenshots go to test-artifacts/ (ignored by git) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import app
from genmodels.data import EXAMPLES_DIR
from genmodels.flow import REALIZE_STRENGTH
from tests.conftest import CHROMIUM, needs_browser, served

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EXAMPLE = str(sorted(EXAMPLES_DIR.glob("*.png"))[0])
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's closed network refuses Google's services
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with served(app.demo) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(url)
        try:
            yield page
        finally:
            browser.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def image_source(page, selector: str) -> str:
    """Wait for an output image under `selector` and return its src."""
    image = page.locator(f"{selector} img").first
    image.wait_for(state="visible")
    return image.get_attribute("src")


def changed_source(page, selector: str, before: str, index: int = 0) -> str:
    """Wait until the `index`-th image under `selector` shows another picture than `before`; return its src."""
    page.wait_for_function(
        "([selector, index, before]) => { const img = document.querySelectorAll(selector + ' img')[index];"
        " return img && img.complete && img.src !== before; }",
        arg=[selector, index, before],
    )
    return page.locator(f"{selector} img").nth(index).get_attribute("src")


def natural_size(page, selector: str, index: int = 0) -> tuple[int, int]:
    """The pixel size of the picture the page received (before the browser enlarges it), once it has loaded."""
    page.wait_for_function(
        "([selector, index]) => document.querySelectorAll(selector + ' img')[index]?.naturalWidth > 0",
        arg=[selector, index],
    )
    return tuple(
        page.evaluate(
            "([selector, index]) => { const img = document.querySelectorAll(selector + ' img')[index];"
            " return [img.naturalWidth, img.naturalHeight]; }",
            [selector, index],
        )
    )


def set_slider(page, selector: str, value: float) -> None:
    """Type a value into a slider's number box and leave it, as a user who types instead of dragging."""
    box = page.locator(f"{selector} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


@needs_browser
def test_generate_tab(page):
    open_tab(page, "Generate")
    first = image_source(page, "#generate-grid")  # the defaults' grid, drawn when the page was built
    page.locator("#generate-seed input").fill("42")
    page.locator("#generate-button").click()
    page.wait_for_function(
        "src => { const img = document.querySelector('#generate-grid img'); return img && img.src !== src; }",
        arg=first,
    )
    page.locator("#generate-gallery img").first.wait_for()  # the single images follow the grid
    assert natural_size(page, "#generate-grid") == (4 * 30 + 2, 4 * 30 + 2), "16 tiles of 28 px with 2 px gaps"
    second = page.locator("#generate-grid img").first.get_attribute("src")
    set_slider(page, "#generate-num", 4)  # no button: the grid follows the slider
    changed_source(page, "#generate-grid", second)
    assert natural_size(page, "#generate-grid") == (2 * 30 + 2, 2 * 30 + 2), "now 4 tiles"
    page.locator("#generate-compare input").check()  # the same seeds through every model, shown below
    page.locator("#generate-comparison img").nth(3).wait_for()
    assert page.locator("#generate-comparison").get_by_text("flow").count() >= 1
    page.screenshot(path=ARTIFACTS / "generate.png", full_page=True)
    page.locator("#generate-compare input").uncheck()
    page.locator("#generate-comparison").wait_for(state="hidden")


@needs_browser
def test_generate_opens_on_the_best_model_the_flow_and_follows_its_steps(page):
    """Generate opens on the flow (the lowest FIDc among the cards) with its grid already drawn and its
    own controls shown; fewer ODE steps redraw it with no click."""
    page.goto(page.url.split("?")[0])
    open_tab(page, "Generate")
    first = image_source(page, "#generate-grid")
    assert page.locator("#generate-model input").input_value() == "flow"
    page.locator("#generate-steps").wait_for(state="visible")
    set_slider(page, "#generate-steps", 4)  # live: fewer ODE steps, a new grid with no click
    changed_source(page, "#generate-grid", first)
    page.screenshot(path=ARTIFACTS / "generate-flow.png", full_page=True)


@needs_browser
def test_roundtrip_tab(page):
    open_tab(page, "Round trip")
    page.locator("#roundtrip-upload input[type=file]").set_input_files(EXAMPLE)
    page.locator("#roundtrip-button").click()
    image_source(page, "#roundtrip-slider")
    page.get_by_text("Reconstruction error").wait_for()
    image_source(page, "#roundtrip-samples")
    assert natural_size(page, "#roundtrip-samples") == (8 * 28 + 7 * 2, 28), "8 posterior samples in one picture"
    page.get_by_text("Realize with the flow model instead").click()
    page.locator("#roundtrip-realize").click()
    image_source(page, "#roundtrip-realized")
    page.screenshot(path=ARTIFACTS / "roundtrip.png", full_page=True)


@needs_browser
def test_interpolate_tab(page):
    open_tab(page, "Interpolate")
    page.locator("#interpolate-button").click()
    slerp = image_source(page, "#interpolate-strip")
    assert natural_size(page, "#interpolate-strip") == (8 * 28 + 7 * 2, 28), "8 steps of 28 px, 2 px gaps"
    page.get_by_label("lerp", exact=True).check()  # the path follows the method, no button
    changed_source(page, "#interpolate-strip", slerp)
    set_slider(page, "#interpolate-position", 0)  # live: the frame follows the scrubbing slider
    at_a = image_source(page, "#interpolate-frame")
    set_slider(page, "#interpolate-position", 1)
    changed_source(page, "#interpolate-frame", at_a)
    set_slider(page, "#interpolate-steps", 4)
    page.wait_for_function("() => document.querySelector('#interpolate-strip img')?.naturalWidth === 4 * 28 + 3 * 2")
    page.screenshot(path=ARTIFACTS / "interpolate.png", full_page=True)


@needs_browser
def test_edit_tab(page):
    open_tab(page, "Edit")
    page.locator("#edit-upload input[type=file]").set_input_files(EXAMPLE)
    upright = image_source(page, "#edit-preview")  # the upload alone previews
    assert natural_size(page, "#edit-preview") == (28, 28)
    page.get_by_label("Flip horizontally").check()
    flipped = changed_source(page, "#edit-preview", upright)
    page.get_by_label("Flip horizontally").uncheck()
    assert changed_source(page, "#edit-preview", flipped) == upright, "unflipped: the same picture again"
    page.locator("#edit-button").click()
    image_source(page, "#edit-slider")
    page.locator("#edit-realize").click()  # the flow model's realize, beside the VAE's projection
    image_source(page, "#edit-realized")
    page.screenshot(path=ARTIFACTS / "edit.png", full_page=True)


@needs_browser
def test_denoise_tab_streams_scrubs_and_compares_guidance(page):
    flow = app.lab.model("flow")
    steps = flow.sampling.steps  # the served checkpoint's default: one frame per step
    realized = flow.realize_steps(REALIZE_STRENGTH, steps)  # a picture noised to the page's default strength
    page.goto(page.url.split("?")[0])
    open_tab(page, "Denoise")
    opened = image_source(page, "#denoise-picture")  # seed 0's path, shown when the tab first opens
    page.locator("#denoise-seed input").fill("3")
    page.locator("#denoise-button").click()
    changed_source(page, "#denoise-picture", opened)  # streaming: the run's first frame replaced it
    page.locator("#denoise-info").get_by_text(f"step {steps} of {steps}").wait_for()
    last = image_source(page, "#denoise-picture")
    assert natural_size(page, "#denoise-picture") == (2 * 28 + 2, 28), "x_t beside the predicted clean image"
    set_slider(page, "#denoise-step", 2)  # scrub back along the path: no computing, the kept frame
    page.locator("#denoise-info").get_by_text(f"step 2 of {steps}").wait_for()
    changed_source(page, "#denoise-picture", last)
    page.locator("#denoise-animation img").wait_for()  # the path as a GIF, with its download button
    assert page.locator("#denoise-animation img").get_attribute("src").endswith(".gif")
    page.locator("#guidance-button").click()
    page.locator("#guidance-row img").nth(2).wait_for()
    assert page.locator("#guidance-row").get_by_text("guidance 0").count() >= 1
    page.get_by_text("…or realize your picture").click()  # a realize: from the picture, half-way noised
    page.locator("#denoise-upload input[type=file]").set_input_files(EXAMPLE)
    page.locator("#denoise-button").click()
    page.locator("#denoise-info").get_by_text(f"step {realized} of {realized}").wait_for()
    page.screenshot(path=ARTIFACTS / "denoise.png", full_page=True)


@needs_browser
def test_a_bad_upload_shows_a_message_and_the_page_keeps_working(page, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)  # a PNG signature and nothing else
    open_tab(page, "Edit")
    page.locator("#edit-upload input[type=file]").set_input_files(str(bad))
    page.get_by_text("not an image we can read", exact=False).first.wait_for()
    page.screenshot(path=ARTIFACTS / "error.png", full_page=True)
    open_tab(page, "Interpolate")
    page.locator("#interpolate-button").click()
    image_source(page, "#interpolate-strip")


@needs_browser
def test_a_shared_link_restores_the_settings_and_json_loads_back(page):
    base = page.url.split("?")[0]
    page.goto(f"{base}?model=cgan&seed=5&num=4&truncation=0.5&temperature=1&label=Sneaker")
    page.wait_for_function("() => document.querySelector('#generate-seed input')?.value === '5'")
    image_source(page, "#generate-grid")
    assert page.get_by_label("Class").first.input_value() == "Sneaker"

    page.locator("#share").get_by_text("Share these settings").click()
    page.locator("#link-button").click()
    page.wait_for_function("() => document.querySelector('#share-link textarea')?.value.includes('seed=5')")
    link = page.locator("#share-link textarea").input_value()
    assert "model=cgan" in link and "label=Sneaker" in link and "num=4" in link

    page.locator("#copy-settings").click()
    page.wait_for_function("() => document.querySelector('#settings-json')?.innerText.includes('\"seed\": 5')")
    editor = page.locator("#settings-json .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"model": "vae", "seed": 9, "num": 2}')
    page.locator("#load-settings").click()
    page.wait_for_function("() => document.querySelector('#generate-seed input')?.value === '9'")
    page.screenshot(path=ARTIFACTS / "share.png", full_page=True)

    page.goto(f"{base}?seed=-3")  # a bad link: a warning, and the page keeps its defaults
    page.get_by_text("were not applied", exact=False).first.wait_for()
    image_source(page, "#generate-grid")


@needs_browser
def test_studio_and_map_tabs(page):
    page.goto(page.url.split("?")[0])
    open_tab(page, "Studio")
    image_source(page, "#studio-slider")  # seed 0's, shown when the tab first opens
    opened = page.locator("#studio-slider img").nth(1).get_attribute("src")
    page.locator("#studio-seed-value input").fill("5")
    page.locator("#studio-seed").click()
    seed_image = changed_source(page, "#studio-slider", opened, index=1)
    page.wait_for_function("() => document.querySelector('#studio-info')?.innerText.includes('Seed 5 in dcgan')")
    set_slider(page, "#studio-amount", 3)  # live: the picture follows the slider, before Apply
    page.wait_for_function(
        "() => document.querySelector('#studio-info')?.innerText.includes('+3 towards Sneaker')", timeout=120_000
    )
    changed_source(page, "#studio-slider", seed_image, index=1)
    page.locator("#studio-apply").click()
    # The first move computes the model's directions (seconds; the server warms them up at start).
    page.wait_for_function(
        "() => document.querySelector('#studio-info')?.innerText.includes('+3 towards Sneaker')", timeout=120_000
    )
    moved = changed_source(page, "#studio-slider", seed_image, index=1)
    page.locator("#studio-undo").click()
    assert changed_source(page, "#studio-slider", moved, index=1) == seed_image, "Undo brings the seed's image back"
    page.get_by_text("Back to result 2", exact=False).first.wait_for()  # after seed 0's, which the tab opened on
    page.screenshot(path=ARTIFACTS / "studio.png", full_page=True)

    open_tab(page, "Map")
    map_image = page.locator("#latent-map img").first
    map_image.wait_for(state="visible")
    box = map_image.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
    page.get_by_text("Map point (", exact=False).first.wait_for()
    page.screenshot(path=ARTIFACTS / "map.png", full_page=True)


@needs_browser
def test_gan_inversion_shows_its_reconstruction_improving(page):
    page.goto(page.url.split("?")[0])
    open_tab(page, "Studio")  # the DCGAN is the first model
    page.locator("#studio-upload input[type=file]").set_input_files(EXAMPLE)
    # Every text the info line shows, recorded as it changes: the streamed stages flash by in tenths of a second.
    page.evaluate(
        """() => { window.seenInfo = [];
        new MutationObserver(() => window.seenInfo.push(document.querySelector('#studio-info').innerText))
            .observe(document.querySelector('#studio-info'), {subtree: true, childList: true, characterData: true}); }"""
    )
    page.locator("#studio-invert").click()
    page.wait_for_function("() => document.querySelector('#studio-info')?.innerText.includes('Inverted into dcgan')")
    seen = page.evaluate("() => window.seenInfo")
    assert any("% done" in text for text in seen), seen
    image_source(page, "#studio-slider")


@needs_browser
def test_masked_regeneration_in_the_editor(page):
    page.goto(page.url.split("?")[0])
    open_tab(page, "Studio")
    page.locator("#studio-model input").click()
    page.get_by_role("option", name="flow", exact=True).click()  # flow redraws by RePaint, not optimisation
    page.get_by_text("Masked regeneration: paint over a part", exact=False).first.click()
    page.locator("#mask-seed").click()
    canvas = page.locator("#mask-editor canvas").first
    canvas.wait_for(state="visible")
    page.wait_for_timeout(1500)  # the background image settles into the canvas
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(12):
        page.mouse.move(x + step * box["width"] * 0.03, y + step * box["height"] * 0.03)
    page.mouse.up()
    page.locator("#mask-button").click()
    page.locator("#mask-slider img").first.wait_for()
    page.get_by_text("Regenerated with flow", exact=False).first.wait_for()
    page.screenshot(path=ARTIFACTS / "inpaint.png", full_page=True)
