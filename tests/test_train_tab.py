"""The Train tab end to end: a short run through gradio_client and in a browser, and what it refuses."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.data import CLASS_NAMES
from genmodels.images import grid
from genmodels.lab import Lab
from genmodels.registry import load_model
from tests.conftest import CHROMIUM, needs_browser, needs_data, served
from ui.page import build_demo

TWO_CLASSES = ["Trouser", "Bag"]


@pytest.fixture(scope="module")
def server():
    """A page with the Train tab (one slot, runs of at most a minute)."""
    lab = Lab("cpu")
    demo = build_demo(lab, training={"slots": 1, "max_minutes": 1})
    with served(demo) as url:
        yield url, lab


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


@needs_data
@pytest.mark.slow
def test_a_short_run_streams_learns_its_classes_joins_the_lab_and_downloads(server, tmp_path):
    url, _ = server
    me = client(url)
    job = me.submit("vae", TWO_CLASSES, [], 25, 1e-3, 128, 32, api_name="/train")
    # Start pressed twice: the second one is refused while the first trains (a message, nothing lost).
    while not job.status().code.name in ("PROCESSING", "ITERATING") or len(job.outputs()) < 2:
        time.sleep(0.5)
    with pytest.raises(Exception, match="already under way"):
        me.predict("vae", [], [], 20, 1e-3, 128, 32, api_name="/train")
    for _ in job:  # to the end of the stream
        pass
    outputs = job.outputs()
    final = outputs[-1]

    # At least two snapshots arrived while it trained, and loss points for both ELBO terms.
    snapshots = {update[2] for update in outputs if isinstance(update[2], str)}
    assert len(snapshots) >= 3
    points = final[1]  # the plot's data: columns elapsed_s, value, series
    assert points["columns"] == ["elapsed_s", "value", "series"]
    series = [row[2] for row in points["data"]]
    assert series.count("reconstruction (−log p(x|z))") >= 2 and series.count("KL(q(z|x) ‖ p(z))") >= 2

    # The last update: the checkpoint .zip, and the model's name chosen in Generate's picker.
    name = final[4]["value"]
    assert name.startswith("yours-vae-") and "Done" in final[0]
    with zipfile.ZipFile(final[3]) as archive:
        names = sorted(Path(n).name for n in archive.namelist())
        assert {"config.json", "model.safetensors", "README.md"} <= set(names)
        assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
        archive.extractall(tmp_path)
    folder = next(tmp_path.glob("*/config.json")).parent
    card = (folder / "README.md").read_text()
    assert "Trouser, Bag" in card and "python -m training.train_vae" in card and "FIDc" in card

    # It loads back from the zip with the same pixels as the lab's /generate gives for the same seed.
    model = load_model("vae", "cpu", folder)
    expected = grid(model.sample(8, seed=3, temperature=1.0))
    picture = me.predict(name, 3, 8, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")[0]
    assert np.array_equal(np.asarray(Image.open(picture).convert("L")), expected)

    # Trained on two classes, its samples are mostly of those two (the bundled classifier's word).
    classifier = load_model("classifier", "cpu")
    with torch.inference_mode():
        predicted = classifier(model.sample(200, seed=0)).argmax(1)
    share = torch.isin(predicted, torch.tensor([CLASS_NAMES.index(c) for c in TWO_CLASSES])).float().mean()
    assert share >= 0.8, f"only {share:.0%} of the samples are trousers or bags"

    # Another session does not see it.
    with pytest.raises(Exception, match="must be one of"):
        client(url).predict(name, 0, 4, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")


@needs_data
def test_bad_requests_get_a_sentence_and_the_server_keeps_serving(server, tmp_path):
    url, _ = server
    me = client(url)
    with pytest.raises(Exception, match="Nothing to stop"):
        me.predict(api_name="/train_stop")
    with pytest.raises(Exception, match="Time budget"):
        me.predict("vae", [], [], 5, 1e-3, 128, 32, api_name="/train")
    with pytest.raises(Exception, match="at most 60"):
        me.predict("vae", [], [], 600, 1e-3, 128, 32, api_name="/train")
    with pytest.raises(Exception, match="Model family"):
        me.predict("gan", [], [], 20, 1e-3, 128, 32, api_name="/train")
    with pytest.raises(Exception, match="Learning rate"):
        me.predict("vae", [], [], 20, 5.0, 128, 32, api_name="/train")
    from gradio_client import handle_file

    few = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((20, 20), 200, np.uint8)).save(path)
        few.append(handle_file(str(path)))
    with pytest.raises(Exception, match="at least 16"):
        me.predict("vae", [], few, 20, 1e-3, 128, 32, api_name="/train")
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as archive:
        archive.writestr("../../escape.png", b"x")
    with pytest.raises(Exception, match="unsafe path"):
        me.predict("vae", [], [handle_file(str(slip))], 20, 1e-3, 128, 32, api_name="/train")
    assert me.predict(api_name="/ping") == "pong"


@needs_data
@needs_browser
@pytest.mark.slow
def test_the_tab_in_a_browser_trains_stops_scrubs_and_hands_the_model_to_generate(server):
    from playwright.sync_api import sync_playwright

    from tests.test_browser import ARTIFACTS, CHROMIUM_FLAGS, changed_source, image_source

    url, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_role("tab", name="Train").click()
        page.get_by_label("dcgan").check()
        page.locator("#train-start").click()
        first = image_source(page, "#train-grid")
        changed_source(page, "#train-grid", first)  # the grid moves on while it trains
        page.locator("#train-stop").click()
        page.get_by_text("Done:").wait_for()
        page.locator("#train-scrubber").wait_for(state="visible")
        last_frame = image_source(page, "#train-frame")
        slider = page.locator("#train-scrubber input[type=range]")
        slider.fill("0")
        changed_source(page, "#train-frame", last_frame)
        page.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)
        assert page.locator("#train-download a").count() >= 1
        page.get_by_role("tab", name="Generate").click()
        assert page.locator("#generate-model input").input_value().startswith("yours-dcgan-")
        browser.close()
