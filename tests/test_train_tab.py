"""The Train tab end to end: a short run through gradio_client and in a browser, and what it refuses."""

from __future__ import annotations

import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import hub
from genmodels.data import CLASS_NAMES
from genmodels.images import grid
from genmodels.lab import Lab
from genmodels.registry import MODELS, load_model
from tests.conftest import CHROMIUM, needs_browser, needs_data, served
from ui.page import build_demo

TWO_CLASSES = ["Trouser", "Bag"]
GOOD_TOKEN, BAD_TOKEN = "hf_good_token_0123456789", "hf_bad_token_9876543210"


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
def test_a_short_run_streams_learns_its_classes_joins_the_lab_downloads_and_pushes(
    server, tmp_path, monkeypatch, caplog
):
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

    # Pushed to the Hub with a token: a refused token gets a sentence that never shows it, nor do the logs.
    pushed: dict[str, bytes] = {}

    class Api:
        def __init__(self, token=None):
            if token != GOOD_TOKEN:
                raise RuntimeError(f"401 Client Error: Unauthorized (token {token} is invalid)")

        def create_repo(self, repo_id, **kwargs):
            pass

        def upload_folder(self, *, repo_id, folder_path, allow_patterns, **kwargs):
            for path in Path(folder_path).iterdir():
                pushed[path.name] = path.read_bytes()
            return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()

    monkeypatch.setattr(hub, "HfApi", Api)
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception, match="Could not push") as refused:
        me.predict("me/my-vae", BAD_TOKEN, api_name="/train_push")
    assert BAD_TOKEN not in str(refused.value) and BAD_TOKEN not in caplog.text
    assert "huggingface.co/me/my-vae" in me.predict("me/my-vae", GOOD_TOKEN, api_name="/train_push")
    assert pushed["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert GOOD_TOKEN not in caplog.text


@needs_data
def test_bad_requests_get_a_sentence_and_the_server_keeps_serving(server, tmp_path):
    url, _ = server
    me = client(url)
    # A call that leaves the knobs out gets its family's recipe (None), not the numbers the page shows.
    parameters = me.view_api(return_format="dict", print_info=False)["named_endpoints"]["/train"]["parameters"]
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in parameters}
    assert defaults["lr"] is None and defaults["batch_size"] is None and defaults["width"] is None
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


def checkpoint_zip(path: Path, files: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return str(path)


def bundled(model: str, *names: str) -> dict[str, bytes]:
    folder = MODELS[model].checkpoint_path
    return {f"{model}/{name}": (folder / name).read_bytes() for name in names}


def test_a_checkpoint_zip_brought_by_a_user_joins_the_lab_with_its_own_pixels(server, tmp_path):
    """The bundled VAE, zipped as the Train tab zips checkpoints: loaded as yours, it draws the bundled
    VAE's pixels for the same seed (the weights are the file's, not a copy of the lab's)."""
    from gradio_client import handle_file

    url, _ = server
    me = client(url)
    archive = checkpoint_zip(tmp_path / "vae.zip", bundled("vae", "config.json", "model.safetensors", "README.md"))
    status, picker, *_ = me.predict(handle_file(archive), "", api_name="/load_checkpoint")
    name = picker["value"]
    assert name.startswith("yours-vae-") and "Loaded the vae" in status
    mine = me.predict(name, 5, 8, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")[0]
    theirs = me.predict("vae", 5, 8, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")[0]
    assert np.array_equal(np.asarray(Image.open(mine)), np.asarray(Image.open(theirs)))
    with pytest.raises(Exception, match="must be one of"):  # a VAE does not join the flow's Denoise picker
        me.predict(seed=0, label="Sneaker", model=name, api_name="/compare_guidance")

    # A flow joins Denoise too, where it draws the bundled flow's pixels.
    archive = checkpoint_zip(tmp_path / "flow.zip", bundled("flow", "config.json", "model.safetensors"))
    status, picker, *_ = me.predict(handle_file(archive), "", api_name="/load_checkpoint")
    assert "Denoise" in status
    mine = me.predict(seed=3, label="Bag", steps=2, model=picker["value"], api_name="/compare_guidance")
    theirs = me.predict(seed=3, label="Bag", steps=2, model="flow", api_name="/compare_guidance")
    for a, b in zip(mine, theirs):
        assert np.array_equal(np.asarray(Image.open(a["image"])), np.asarray(Image.open(b["image"])))


def test_brought_checkpoints_with_tricks_get_a_sentence(server, tmp_path):
    from gradio_client import handle_file

    url, _ = server
    me = client(url)
    cases = {
        "pickled weights": {"m/config.json": b"{}", "m/pytorch_model.bin": b"\x80\x04pickle"},
        "matches none of the families": bundled("cgan", "config.json", "model.safetensors"),
        "unsafe path": {"../config.json": b"{}", "model.safetensors": b"x"},
        "does not load": {
            "config.json": (MODELS["vae"].checkpoint_path / "config.json").read_bytes(),
            "model.safetensors": b"\x00" * 64,
        },
        "needs config.json and model.safetensors": {"notes.txt": b"hello"},
    }
    for message, files in cases.items():
        archive = checkpoint_zip(tmp_path / f"{len(message)}.zip", files)
        with pytest.raises(Exception, match=message):
            me.predict(handle_file(archive), "", api_name="/load_checkpoint")
    with pytest.raises(Exception, match="not a Hub model id"):
        me.predict(None, "../../etc/passwd", api_name="/load_checkpoint")
    with pytest.raises(Exception, match="Upload a checkpoint"):
        me.predict(None, "", api_name="/load_checkpoint")
    with pytest.raises(Exception, match="Train a model first"):
        me.predict("me/x", GOOD_TOKEN, api_name="/train_push")
    assert me.predict(api_name="/ping") == "pong"


def test_a_hub_repo_brought_by_a_user_joins_the_lab(server, tmp_path, monkeypatch):
    """A Hub repo id, fetched from the loopback Hub the publishing tests use."""
    from huggingface_hub import constants

    from tests.hub_server import HubServer

    url, _ = server
    files = {name.split("/", 1)[1]: data for name, data in bundled("dcgan", "config.json", "model.safetensors").items()}
    with HubServer({"someone/dcgan": {"main": files}}) as hub_server:
        monkeypatch.setattr(constants, "ENDPOINT", hub_server.endpoint)
        template = hub_server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        me = client(url)
        status, picker, *_ = me.predict(None, "someone/dcgan", api_name="/load_checkpoint")
        assert picker["value"].startswith("yours-dcgan-") and "someone/dcgan" in status
        mine = me.predict(picker["value"], 2, 4, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")[0]
        theirs = me.predict("dcgan", 2, 4, 0, 1, False, CLASS_NAMES[0], 6, 3.7, api_name="/generate")[0]
        assert np.array_equal(np.asarray(Image.open(mine)), np.asarray(Image.open(theirs)))
        with pytest.raises(Exception, match="no such model repository"):
            me.predict(None, "someone/missing", api_name="/load_checkpoint")


def test_generate_opens_a_users_model_on_a_class_it_learned(tmp_path):
    """A flow trained on pictures without classes opens on "any class" (a T-shirt label would ask it for a
    class it never saw); one trained on Trouser and Bag on Trouser; a VAE's class picker is left alone."""
    from training.jobs import Job, JobRunner
    from ui.train import Trainer

    trainer = Trainer(Lab.__new__(Lab), None, JobRunner(tmp_path / "jobs"), pickers=4)
    trainer.lab.models, trainer.lab.yours = {}, {}

    def job(family, classes=(), pictures=0):
        return Job("s", family, tmp_path, [], 60, classes=list(classes), pictures=pictures)

    assert trainer.own("s", "yours-flow-a", job("flow", pictures=40))[-1]["value"] == "any class"
    assert trainer.own("s", "yours-flow-b", job("flow", classes=[1, 8]))[-1]["value"] == "Trouser"
    assert trainer.own("s", "yours-flow-c", job("flow"))[-1] == {"__type__": "update"}  # gr.skip(): all ten
    assert trainer.own("s", "yours-vae-d", job("vae", pictures=40))[-1] == {"__type__": "update"}
