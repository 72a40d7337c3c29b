"""The app served on a free port, every api_name called through gradio_client."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from genmodels.data import EXAMPLES_DIR, to_tensor, to_uint8
from genmodels.registry import MODELS, latent_encoder_name, load_model
from genmodels.studio import INVERT_UPDATES, inversion_steps
from tests.conftest import served
from ui.serving import ROOT

EXAMPLE = str(sorted(EXAMPLES_DIR.glob("*.png"))[0])


@pytest.fixture(scope="module")
def client():
    with served(app.demo) as url:
        yield Client(url, verbose=False, ssl_verify=False)


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def assert_picture(path: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """The file is an image of `size` (width, height) with real content (not one flat colour)."""
    image = pixels(path)
    if size:
        assert Image.open(path).size == size
    assert image.std() > 5, f"{path} is blank"
    return image


def test_generate_with_only_the_documented_names(client):
    grid, _ = client.predict(model="dcgan", seed=0, num=16, api_name="/generate")
    assert grid.endswith(".png"), "the grid is its own PNG download"
    first = assert_picture(grid, (122, 122))
    again = client.predict(model="dcgan", seed=0, num=16, api_name="/generate")[0]
    assert np.array_equal(first, pixels(again)), "same seed and settings, same pixels"
    other = client.predict(model="dcgan", seed=1, num=16, api_name="/generate")[0]
    assert not np.array_equal(first, pixels(other))


def test_generate_vae_with_temperature(client):
    grid, *_ = client.predict(model="vae", seed=7, num=4, temperature=0.5, api_name="/generate")
    assert_picture(grid, (62, 62))
    usual, *_ = client.predict(model="vae", seed=7, num=4, temperature=1.0, api_name="/generate")
    assert not np.array_equal(pixels(grid), pixels(usual)), "the temperature reaches the model"


def test_generate_conditional_with_a_class(client):
    sneakers, *_ = client.predict(model="cgan", seed=0, num=4, label="Sneaker", api_name="/generate")
    bags, *_ = client.predict(model="cgan", seed=0, num=4, label="Bag", api_name="/generate")
    assert_picture(sneakers, (62, 62))
    assert not np.array_equal(pixels(sneakers), pixels(bags))


def flow_defaults() -> tuple[int, float]:
    """The served flow checkpoint's own sampling settings (its config.json): what the page's defaults must be."""
    sampling = load_model("flow", "cpu").sampling
    return sampling.steps, sampling.guidance


def test_generate_flow_with_steps_and_guidance(client):
    grid, *_ = client.predict(model="flow", seed=0, num=16, label="Sneaker", api_name="/generate")
    first = assert_picture(grid, (122, 122))
    steps, guidance = flow_defaults()
    again = client.predict(
        model="flow", seed=0, num=16, label="Sneaker", steps=steps, guidance=guidance, api_name="/generate"
    )
    assert np.array_equal(first, pixels(again[0])), "the defaults are the checkpoint's steps and guidance"
    assert steps != 4, "the call below asks for other steps than the default"
    fewer = client.predict(model="flow", seed=0, num=16, label="Sneaker", steps=4, api_name="/generate")[0]
    anything = client.predict(model="flow", seed=0, num=16, label="any class", api_name="/generate")[0]
    assert len({first.tobytes(), pixels(fewer).tobytes(), pixels(anything).tobytes()}) == 3
    with pytest.raises(AppError, match="Steps"):
        client.predict(model="flow", seed=0, num=4, steps=0, api_name="/generate")
    row = client.predict(model="flow", seed=0, label="Sneaker", api_name="/every_class")
    assert Image.open(row).size == (10 * 28 + 9 * 2, 28), "ten classes side by side, 2 px apart"
    single = client.predict(model="flow", seed=0, num=1, label="Sneaker", api_name="/generate")[0]
    # The same noise and class computed in a batch of 10 and of 1: equal up to rounding, which the ODE
    # carries through its steps (a few grey levels at most).
    difference = pixels(row)[:, 7 * 30 : 7 * 30 + 28].astype(int) - pixels(single)  # one image: no border
    assert np.abs(difference).max() <= 8, "class 7 of the row is the Sneaker"


def test_realize_denoise_and_guidance_side_by_side(client):
    before, after = client.predict(image=handle_file(EXAMPLE), strength=0.5, api_name="/realize")
    assert np.array_equal(pixels(before), pixels(EXAMPLE)), "a test image is used as it is"
    change = np.abs(pixels(after).astype(int) - pixels(before)).mean()
    assert 2 < change < 60, f"half the way to noise and back: changed, but still the picture ({change:.1f})"
    _, forgotten = client.predict(image=handle_file(EXAMPLE), strength=1, label="Bag", seed=5, api_name="/realize")
    sample = client.predict(model="flow", seed=5, num=1, label="Bag", api_name="/generate")[0]
    assert np.array_equal(pixels(forgotten), pixels(sample)), "strength 1: the seed's sample, the picture forgotten"
    # Watching: the frames stream (the start and one per step, then the GIF); the last frame's x_0 is the sample.
    steps, guidance = flow_defaults()
    job = client.submit(seed=5, label="Bag", api_name="/denoise")
    streamed = list(job)
    assert len(streamed) == 1 + steps + 1, "the start, one frame per step of the checkpoint's, the finished path"
    last, caption, step, animation = job.result()
    assert np.array_equal(pixels(last)[:, :28], pixels(sample)) and f"step {steps} of {steps}" in caption
    assert Image.open(animation).n_frames == steps + 1 and step["value"] == steps
    gallery = client.predict(seed=5, label="Bag", api_name="/compare_guidance")
    assert [item["caption"] for item in gallery] == ["guidance 0", "guidance 1", f"guidance {guidance:g}"]
    assert np.array_equal(pixels(gallery[2]["image"]), pixels(sample)), "the third weight is the default's"
    unconditional = client.predict(model="flow", seed=5, num=1, label="any class", api_name="/generate")[0]
    assert np.array_equal(pixels(gallery[0]["image"]), pixels(unconditional)), "guidance 0: the class ignored"
    with pytest.raises(AppError, match="Strength"):
        client.predict(image=handle_file(EXAMPLE), strength=2, api_name="/realize")


def test_roundtrip(client):
    steps, slider, heat, summary, plot, samples = client.predict(image=handle_file(EXAMPLE), api_name="/roundtrip")
    before, after = slider
    assert_picture(before, (28, 28))
    assert_picture(after, (28, 28))
    assert Image.open(heat).size == (28, 28) and "PSNR" in summary
    assert Image.open(samples).size == (8 * 28 + 7 * 2, 28), "8 samples side by side, 2 px apart"
    assert steps == [], "nothing was done to the picture: the steps gallery does not repeat 'before'"
    assert "Used as it is" in summary, "a Fashion-MNIST test image reaches the model unchanged"
    before_pixels = np.asarray(Image.open(before))
    assert np.array_equal(before_pixels[..., 0] if before_pixels.ndim == 3 else before_pixels, pixels(EXAMPLE))
    after_pixels = np.asarray(Image.open(after))
    expected = app.lab.roundtrip(pixels(EXAMPLE)).reconstruction  # the VAE's posterior mean, decoded, in Python
    assert np.array_equal(after_pixels[..., 0] if after_pixels.ndim == 3 else after_pixels, expected)


def test_interpolate(client):
    strip, animation = client.predict(model="vae", seed_a=0, seed_b=1, steps=6, method="slerp", api_name="/interpolate")
    assert_picture(strip, (6 * 28 + 5 * 2, 28))
    assert Image.open(animation).n_frames == 10
    again = client.predict(model="vae", seed_a=0, seed_b=1, steps=6, method="slerp", api_name="/interpolate")[0]
    assert np.array_equal(pixels(strip), pixels(again))


def test_edit(client):
    prepared, edited, slider = client.predict(image=handle_file(EXAMPLE), angle=45, api_name="/edit")
    assert np.array_equal(assert_picture(prepared, (28, 28)), pixels(EXAMPLE)), "a test image is used as it is"
    turned = assert_picture(edited, (28, 28))
    assert not np.array_equal(turned, pixels(EXAMPLE)), "the angle reaches the edit"
    projected = np.asarray(Image.open(slider[1]).convert("L"))
    assert np.array_equal(projected, app.lab.roundtrip(turned).reconstruction), "projected: the VAE's reconstruction"


def test_errors_come_back_as_messages_and_the_server_keeps_serving(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture" * 20)
    with pytest.raises(AppError, match="not an image"):
        client.predict(image=handle_file(str(bad)), api_name="/roundtrip")
    with pytest.raises(AppError, match="maximum|Steps"):  # Gradio checks the slider range first
        client.predict(model="dcgan", seed_a=0, seed_b=1, steps=1000, api_name="/interpolate")
    assert client.predict(api_name="/ping") == "pong"
    grid, *_ = client.predict(model="dcgan", seed=0, num=1, api_name="/generate")
    assert_picture(grid)


def test_settings_round_trip_through_json(client):
    text = client.predict(
        model="cgan", seed=3, num=4, truncation=0.5, temperature=1.0, label="Bag", api_name="/settings"
    )
    assert json.loads(text) == {
        "model": "cgan",
        "seed": 3,
        "num": 4,
        "truncation": 0.5,
        "temperature": 1.0,
        "label": "Bag",
        "steps": flow_defaults()[0],  # the flow's knobs at the checkpoint's defaults (the cGAN ignores them)
        "guidance": flow_defaults()[1],
    }
    loaded = client.predict(text=text, api_name="/load_settings")
    assert list(loaded) == ["cgan", 3, 4, 0.5, 1.0, "Bag", *flow_defaults()]
    with pytest.raises(AppError, match="Unknown setting"):
        client.predict(text='{"seeed": 1}', api_name="/load_settings")


def test_the_server_hands_out_only_what_it_created(client):
    """No file outside Gradio's uploads and outputs: not the code, checkpoints, or system files."""
    base = client.src.rstrip("/")
    grid = client.predict(model="dcgan", seed=0, num=4, api_name="/generate")[0]
    assert Path(grid).is_file()
    for path in (
        Path(app.__file__),
        ROOT / "checkpoints" / "dcgan-fashion" / "model.safetensors",
        Path("/etc/passwd"),
    ):
        status = http_status(f"{base}/gradio_api/file={path}")
        assert status in (403, 404), f"{path} was served ({status})"
    for path in ("/etc/passwd", str(ROOT / "app.py")):
        with pytest.raises(AppError):  # a client cannot pass a server path off as an upload
            client.predict(image={"path": path, "meta": {"_type": "gradio.FileData"}}, api_name="/roundtrip")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_flow_moves_along_the_class_directions_of_real_images_noise(client):
    """The flow's noise, moved towards a class (found from inverted training images), decodes to that
    class without a class label: the bundled classifier is the judge."""
    classifier = load_model("classifier", "cpu")
    for target, index in (("Trouser", 1), ("Bag", 8)):
        (before, after), info = client.predict(
            model="flow", seed=4, target=target, amount=4.0, label="any class", api_name="/move"
        )
        images = to_tensor(np.stack([pixels(before), pixels(after)]))
        with torch.inference_mode():
            share = classifier(images).softmax(1)[:, index]
        assert share[0] < 0.5 < share[1], f"towards {target}: {share.tolist()}"


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_gan_inversion_streams_its_reconstructions_and_fits_a_test_image(client, model):
    """/invert into each GAN: its trained encoder's guess refined by L-BFGS, each stage on its way (the
    cGAN's encoder and generator under the class the page sends: the example is an ankle boot)."""
    job = client.submit(image=handle_file(EXAMPLE), model=model, label="Ankle boot", api_name="/invert")
    (before, after), info = job.result()
    stages = job.outputs()
    assert len(stages) == INVERT_UPDATES, "the page sees the reconstruction improve, not only a bar"
    assert all("% done" in stage[1] for stage in stages[:-1]) and info.startswith(f"**Inverted into {model}:**")
    first, last = pixels(stages[0][0][1]), pixels(after)
    assert not np.array_equal(first, last)
    prepared = pixels(before).astype(float) / 255
    fit = [psnr(pixels(stage[0][1]), prepared) for stage in stages]
    # A Fashion-MNIST test image the generator never saw: 22 dB is the median target over 100 of them.
    assert fit[-1] >= 21 and fit[-1] > fit[0], fit
    stated = float(re.search(r"PSNR ([\d.]+) dB", info)[1])
    assert abs(stated - fit[-1]) < 0.3, "the stated PSNR is the picture's (up to 8-bit rounding)"
    # The same pixels as the generator's own encoder refined by its registered L-BFGS iterations, in Python.
    encoder = latent_encoder_name(model)
    python = inversion_steps(
        app.lab.model(model),
        to_tensor(pixels(before))[0],
        latent_encoder=app.lab.models[encoder],
        label=9 if MODELS[model].conditional else None,
        refine_iterations=MODELS[encoder].refine_iterations,
    )
    assert np.array_equal(last, to_uint8(list(python)[-1].image[None])[0].numpy())


def test_flow_inversion_without_a_class_inverts_under_any_class_and_says_so(client):
    """No label: the flow's unconditional path (not class 0, which fit a boot as a T-shirt at 22 dB), named
    on the page; its ODE there and back returns the picture (median 30.9 dB over 100 test images)."""
    (before, after), info = client.predict(image=handle_file(EXAMPLE), model="flow", api_name="/invert")
    assert "under **any class**" in info, info
    fit = psnr(pixels(after), pixels(before).astype(float) / 255)
    as_tshirt = client.predict(image=handle_file(EXAMPLE), model="flow", label="T-shirt/top", api_name="/invert")
    assert fit > 27 and fit > psnr(pixels(as_tshirt[0][1]), pixels(before).astype(float) / 255) + 2, fit


def test_cgan_inversion_takes_the_class_asked_for(client):
    """The class reaches the cGAN's encoder and generator: as a T-shirt the boot fits far worse."""
    (before, after), _ = client.predict(
        image=handle_file(EXAMPLE), model="cgan", label="T-shirt/top", api_name="/invert"
    )
    assert psnr(pixels(after), pixels(before).astype(float) / 255) < 18


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of a uint8 image to a reference in [0, 1]."""
    return 10 * np.log10(1 / np.mean((image / 255 - reference) ** 2))


def test_studio_endpoints(client):
    (before, after), info = client.predict(image=handle_file(EXAMPLE), model="vae", api_name="/invert")
    assert "PSNR" in info and " s." in info
    assert_picture(after, (28, 28))
    (before, after), info = client.predict(model="vae", seed=4, target="Bag", amount=2.0, api_name="/move")
    assert not np.array_equal(pixels(before), pixels(after)) and "towards **Bag**" in info
    same = client.predict(model="vae", seed=4, target="Bag", amount=2.0, api_name="/move")[0]
    assert np.array_equal(pixels(after), pixels(same[1])), "same settings, same pixels"
    with pytest.raises(AppError, match="class as an input"):
        client.predict(model="cgan", seed=4, target="Bag", amount=2.0, api_name="/move")

    operands, result = client.predict(model="vae", a="seed 3", b="seed 3", c="Sneaker", api_name="/arithmetic")
    assert Image.open(operands).size == (3 * 28 + 2 * 2, 28), "A, B and C side by side, 2 px apart"
    sneaker = client.predict(model="vae", a="Sneaker", b="seed 1", c="seed 1", api_name="/arithmetic")[1]
    assert np.array_equal(assert_picture(result, (28, 28)), pixels(sneaker)), "A - A + C = C = C - B + B"
    strip, gif = client.predict(model="dcgan", keys="seed 0, Bag, seed 5", steps=4, api_name="/keyframes")
    # Two segments of 4 frames sharing "Bag": 7 frames of 28 px, 2 px apart; the GIF plays them once through.
    assert Image.open(strip).size == (7 * 28 + 6 * 2, 28) and Image.open(gif).n_frames == 7
    with pytest.raises(AppError, match="keyframes"):
        client.predict(model="dcgan", keys="seed 0", api_name="/keyframes")
    strip = client.predict(
        model="vae", keys="seed 0, image 1, Bag", steps=3, images=[handle_file(EXAMPLE)], api_name="/keyframes"
    )[0]
    assert Image.open(strip).size == (5 * 28 + 4 * 2, 28)
    frame = np.asarray(Image.open(strip).convert("L"))[:, 2 * 30 : 2 * 30 + 28]
    assert np.array_equal(frame, app.lab.roundtrip(pixels(EXAMPLE)).reconstruction), "image 1: the upload's latent"

    decoded, near, where = client.predict(x=1.0, y=-0.5, api_name="/map_point")
    assert_picture(decoded, (28, 28))
    assert len(near) == 8 and where == "Map point (1.00, -0.50)"


def test_inpaint_endpoint(client, tmp_path):
    mask = np.zeros((28, 28), np.uint8)
    mask[:, 14:] = 255  # regenerate the right half
    Image.fromarray(mask).save(tmp_path / "mask.png")
    (original, blended), generated, info = client.predict(
        image=handle_file(EXAMPLE), mask=handle_file(str(tmp_path / "mask.png")), model="vae", api_name="/inpaint"
    )
    a, b = pixels(original), pixels(blended)
    assert np.array_equal(a[:, :14], b[:, :14]), "the kept half is the user's"
    assert "PSNR" in info
    (_, redrawn), _, info = client.predict(
        image=handle_file(EXAMPLE), mask=handle_file(str(tmp_path / "mask.png")), model="flow", api_name="/inpaint"
    )
    assert np.array_equal(a[:, :14], pixels(redrawn)[:, :14]) and "Regenerated with flow" in info
    with pytest.raises(AppError, match="empty"):
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "empty.png")
        client.predict(image=handle_file(EXAMPLE), mask=handle_file(str(tmp_path / "empty.png")), api_name="/inpaint")


# Every payload shape Gradio accepts for a file, each naming a file on the server: an image the app
# blocks from being served, a system file, and a path that does not exist.
SERVER_FILES = [str(ROOT / "checkpoints" / "dcgan-fashion" / "samples.png"), "/etc/passwd", "/no/such/file.png"]


def file_shapes(path: str) -> list:
    plain = {"path": path}
    marked = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
    return [
        plain,
        marked,
        {"path": path, "url": f"/gradio_api/file={path}"},
        {"background": plain, "layers": [plain], "composite": marked, "id": None},  # editor and sketchpad
        [plain],  # file lists
        [{"image": marked, "caption": None}],  # gallery entries
        {"value": {"nested": [marked]}},  # JSON
    ]


def raw_call(base: str, api_name: str, data: list) -> str:
    """POST the exact payload to Gradio's REST API (no client-side upload) and return the event stream."""
    request = urllib.request.Request(
        f"{base}/gradio_api/call/{api_name}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        return response.read().decode()


def test_no_payload_shape_passes_a_server_path_off_as_an_upload(client):
    """Every file-like parameter of every endpoint, every shape, every server file: one plain refusal."""
    base = client.src.rstrip("/")
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    checked = 0
    for api_name, endpoint in endpoints.items():
        parameters = endpoint["parameters"]
        defaults = [p.get("parameter_default") if p.get("parameter_has_default") else None for p in parameters]
        for index, parameter in enumerate(parameters):
            if "filepath" not in parameter["python_type"]["type"]:
                continue
            for path in SERVER_FILES:
                for shape in file_shapes(path):
                    data = list(defaults)
                    data[index] = shape
                    stream = raw_call(base, api_name.lstrip("/"), data)
                    assert "event: error" in stream, f"{api_name}.{parameter['parameter_name']} took {shape}"
                    assert REFUSAL_TEXT in stream, stream
                    assert "MB" not in stream and "exist" not in stream and path not in stream
                    checked += 1
    assert checked >= 10 * 3 * 7, (
        "every file parameter of roundtrip, edit, invert, interpolate, arithmetic, keyframes, inpaint"
    )
    assert client.predict(api_name="/ping") == "pong"


REFUSAL_TEXT = "a path on the server is not accepted"


# Values of every JSON type, and numbers a form would never send.
ODD_VALUES = [None, True, 0, -1, 1.5, 1e308, float("nan"), "", "x", "seed ²", [], [1], {}, {"a": 1}]
RAW_MESSAGES = (
    "Traceback",
    "Could not preprocess",
    "has no attribute",
    "invalid literal",
    "not supported between",
    "cannot convert",
    "object is not",
    "index out of range",
    "unhashable",
)


# One ODE step where only the flow's sampler takes the steps: the same answers, the sweep quicker.
QUICK = {("/denoise", "steps"): 1, ("/compare_guidance", "steps"): 1}


def test_every_parameter_takes_any_json_value_with_a_plain_answer(client):
    """Each value in turn for each parameter of each endpoint (the others at their defaults): a result
    or a plain sentence, never a raw Python message; and the server keeps serving."""
    base = client.src.rstrip("/")
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    answered = 0
    for api_name, endpoint in endpoints.items():
        if api_name in ("/invert", "/inpaint"):  # optimisations: their files and numbers are covered above
            continue
        if api_name == "/train":  # each accepted value would train for minutes: tests/test_train_tab.py
            continue
        parameters = endpoint["parameters"]
        defaults = [p.get("parameter_default") if p.get("parameter_has_default") else None for p in parameters]
        defaults = [QUICK.get((api_name, p["parameter_name"]), d) for p, d in zip(parameters, defaults)]
        for index in range(len(parameters)):
            for value in ODD_VALUES:
                data = list(defaults)
                data[index] = value
                stream = raw_call(base, api_name.lstrip("/"), data)
                assert "event: complete" in stream or "event: error" in stream, stream[:300]
                for raw in RAW_MESSAGES:
                    assert raw not in stream, (
                        f"{api_name} {parameters[index]['parameter_name']}={value!r}: {stream[:400]}"
                    )
                answered += 1
    assert answered > 500
    assert client.predict(api_name="/ping") == "pong"


def test_the_api_is_exactly_what_the_readme_lists(client):
    paragraph = next(part for part in (ROOT / "README.md").read_text().split("\n\n") if "these are all of them" in part)
    listed = set(re.findall(r"`(/\w+)`", paragraph))
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == listed and not api["unnamed_endpoints"]


def test_a_drawing_gets_the_upload_limits_before_it_is_decoded(client, tmp_path):
    """A small PNG that declares 8000x8000 pixels, sent as the Round trip drawing: the upload limit's
    message, at once (before: Gradio decoded all 64 million pixels first)."""
    big = tmp_path / "big.png"
    Image.new("L", (8000, 8000)).save(big, optimize=True)
    assert big.stat().st_size < 200_000
    sketch = {"background": None, "layers": [], "composite": handle_file(str(big)), "id": None}
    started = time.perf_counter()
    with pytest.raises(AppError, match="the limit is 16,777,216"):
        client.predict(image=None, sketch=sketch, api_name="/roundtrip")
    assert time.perf_counter() - started < 5
    drawing = tmp_path / "drawing.png"
    canvas = Image.new("RGBA", (420, 420), (0, 0, 0, 0))
    canvas.paste((0, 0, 0, 255), (150, 60, 270, 360))  # a dark bar on a transparent canvas
    canvas.save(drawing)
    steps, (before, after), *_ = client.predict(
        image=None,
        sketch={"background": None, "layers": [], "composite": handle_file(str(drawing)), "id": None},
        api_name="/roundtrip",
    )
    assert_picture(before, (28, 28))
