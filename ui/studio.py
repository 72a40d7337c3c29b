"""Studio tab: bring a latent in (a seed or your image), move it, A - B + C, keyframes, masked regeneration.

Every result joins the undo history (a list of before/after pairs kept per browser session).
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from genmodels.data import CLASS_NAMES
from genmodels.images import row, upscale
from genmodels.lab import Lab
from genmodels.limits import ANY_CLASS, MAX_APP_SEED, MAX_MOVE, MAX_STEPS, check_int
from genmodels.preprocess import editor_image, painted_mask, prepare_mask, prepare_upload
from genmodels.registry import entry_of
from genmodels.studio import movable

from . import texts
from .components import (
    CLASS_CHOICES,
    LIVE,
    ImageEditor,
    Upload,
    bind,
    class_of,
    first_sight,
    friendly,
    gif_output,
    gray,
    image_input,
    label_visibility,
    read_upload,
    to_uint8_list,
)
from .files import OutputStore
from .interpolate import gif

PRINCIPAL_SLIDERS = 4
EDITOR_ZOOM = 10  # the mask editor shows the 28x28 image at 280x280


def studio_state(model: str, z: torch.Tensor, label: str, source: str) -> dict:
    """What the studio remembers about the latent brought in (per browser session)."""
    return {"model": model, "z": z.detach().cpu(), "label": label, "source": source}


def inversion_class(lab: Lab, model: str, image, label: str) -> tuple[str, str]:
    """The class a picture is inverted under, and the words that say so: "any class" stays for flow
    (its unconditional path), and becomes the classifier's guess for a family that needs a class."""
    entry = entry_of(model)
    if not entry.conditional:
        return label, ""
    if label == ANY_CLASS and not entry.any_class:
        label = lab.guess_class(image)
        return label, f" as **{label}** (the classifier's guess; pick a class to choose another),"
    return label, f" under **{label}**,"


@friendly
def invert(lab: Lab, image, model: str = "vae", label: str = ANY_CLASS):
    """Find the latent of your picture in a model: the picture next to the model's reconstruction of it.

    The VAE encodes it; flow runs its ODE backwards from the picture to the noise; a GAN has no encoder
    of its own, so its latent is found by optimising the pixel error by L-BFGS from the guess of an
    encoder trained for it (the cGAN's also takes the class). While a GAN is optimised, the page shows
    the reconstruction improving. The text gives the PSNR to the prepared picture and the time.

    Args:
        image: the picture to invert.
        model: the generative model (dcgan, vae, cgan or flow).
        label: the class of cgan and flow. "any class" (the default): flow inverts without a class, and
            cgan, which needs one, takes the bundled classifier's guess; the text says which.
    """
    prepared = read_upload(image).image
    label, under = inversion_class(lab, model, prepared, label)
    for result in lab.inversion_steps(model, prepared, label=class_of(label)):
        reconstruction = to_uint8_list(result.image[None])[0]
        if result.fraction < 1:  # the best reconstruction so far; the latent is kept only at the end
            info = f"**Inverting into {model}:** {result.fraction:.0%} done, PSNR {result.psnr:.1f} dB so far."
            yield (prepared, reconstruction), info, gr.skip()
    info = (
        f"**Inverted into {model}:**{under} PSNR {result.psnr:.1f} dB to your image as prepared (28x28), "
        f"in {result.seconds:.2f} s."
    )
    state = studio_state(model, result.z, label, "your image")
    yield (prepared, reconstruction), info, state


@friendly
def studio_seed(lab: Lab, model: str, seed: int, label: str = CLASS_NAMES[0]):
    """Bring a random seed's latent into the studio and show its image.

    Args:
        model: the generative model (dcgan, vae, cgan or flow).
        seed: the random seed.
        label: the class of cgan and flow (flow also takes "any class").
    """
    z = lab.latent(model, check_int("Seed", seed, 0, MAX_APP_SEED), class_of(label))
    image = to_uint8_list(lab.decode(model, z[None], class_of(label)))[0]
    state = studio_state(model, z, label, f"seed {int(seed)}")
    return (image, image), f"**Seed {int(seed)}** in {model}.", state


@friendly
def every_class(lab: Lab, model: str = "flow", seed: int = 0, image=None, label: str = CLASS_NAMES[0]):
    """One latent through all ten class labels of a conditional model, side by side: what the latent
    holds apart from the class (pose, shape, shade), e.g. a shirt's noise as a dress or a sneaker.

    Returns a row of ten 28x28 images, T-shirt/top to Ankle boot.

    Args:
        model: a model with a class input (cgan or flow).
        seed: random seed of the latent, used when no image is given.
        image: optional picture whose latent to use instead (inverted under `label`).
        label: the class the picture is inverted under (flow also takes "any class").
    """
    operand = read_upload(image).image if image is not None else check_int("Seed", seed, 0, MAX_APP_SEED)
    return row(to_uint8_list(lab.every_class(model, lab.latent(model, operand, class_of(label)))))


def state_every_class(lab: Lab, state: dict | None):
    """The studio's latent as every class, shown for conditional models (the page's row)."""
    if not state or not entry_of(state["model"]).conditional:
        return gr.update(visible=False)
    return gr.update(value=row(to_uint8_list(lab.every_class(state["model"], state["z"]))), visible=True)


@friendly
def move_latent(
    lab: Lab,
    model: str,
    seed: int = 0,
    target: str = CLASS_NAMES[0],
    amount: float = 0.0,
    keep: list[str] | None = None,
    pc1: float = 0.0,
    pc2: float = 0.0,
    pc3: float = 0.0,
    pc4: float = 0.0,
    label: str = CLASS_NAMES[0],
    base: dict | None = None,
    history=None,
):
    """`move` on the page: the latent brought into the studio (`base`; a seed's without one), the
    result added to the undo history."""
    if base is None or base["model"] != model:
        base = studio_state(
            model, lab.latent(model, check_int("Seed", seed, 0, MAX_APP_SEED), class_of(label)), label, "seed"
        )
    z = base["z"]
    moved = lab.move(model, z[None], target, amount, keep or [], [pc1, pc2, pc3, pc4])
    before, after = to_uint8_list(
        lab.decode(model, torch.cat([z[None].to(lab.device), moved]), class_of(base["label"]))
    )
    shares = ", ".join(f"{share:.0%}" for share in lab.directions(model).explained[:PRINCIPAL_SLIDERS].tolist())
    info = (
        f"From {base['source']}: {amount:+g} towards **{target}**"
        + (f" keeping {', '.join(keep)} fixed" if keep else "")
        + f"; principal directions {pc1:+g}, {pc2:+g}, {pc3:+g}, {pc4:+g} (their variance shares: {shares})."
    )
    return (before, after), info, [*(history or []), (before, after)]


@friendly
def move(
    lab: Lab,
    model: str,
    seed: int = 0,
    target: str = CLASS_NAMES[0],
    amount: float = 0.0,
    keep: list[str] | None = None,
    pc1: float = 0.0,
    pc2: float = 0.0,
    pc3: float = 0.0,
    pc4: float = 0.0,
    label: str = CLASS_NAMES[0],
):
    """Move a latent towards a class and along the main axes of variation: before and after.

    Seed `seed`'s latent is moved (the page moves the latent brought into the studio). One unit of amount is a
    quarter of a typical latent's length.

    Args:
        model: dcgan, vae or flow (its noise, with the directions of real images' inverted noise).
        seed: random seed of the latent to move.
        target: the class to move towards (or away from, with a negative amount).
        amount: how far, -10 to 10.
        keep: classes to keep fixed: the move is made orthogonal to their directions (InterFaceGAN).
        pc1: amount along the first principal direction (GANSpace).
        pc2: amount along the second principal direction.
        pc3: amount along the third principal direction.
        pc4: amount along the fourth principal direction.
        label: flow's class ("any class" lets the class directions steer); unused by dcgan and vae.
    """
    pair, info, _ = move_latent(lab, model, seed, target, amount, keep, pc1, pc2, pc3, pc4, label)
    return pair, info


def preview(
    lab: Lab,
    model: str,
    seed: int,
    target: str,
    amount: float,
    keep: list[str] | None,
    pc1: float,
    pc2: float,
    pc3: float,
    pc4: float,
    label: str,
    base: dict | None,
):
    """`move` while a direction slider is dragged: the picture and its text, not a step in the undo history."""
    pair, info, _ = move_latent(lab, model, seed, target, amount, keep, pc1, pc2, pc3, pc4, label, base)
    return pair, info


def remember(pair, history):
    """The undo history with the studio's result `pair` (before, after) added (the page's record)."""
    if not pair or pair[0] is None or pair[1] is None:
        return history
    return [*(history or []), (gray(pair[0]), gray(pair[1]))]


def record_pair(pair, history):
    """Put a before/after result of another studio tool into the undo history and the main slider."""
    if not pair or pair[0] is None or pair[1] is None:
        return gr.skip(), history
    entry = (gray(pair[0]), gray(pair[1]))
    return entry, [*(history or []), entry]


def record_arithmetic(strip, result, history):
    """A - B + C into the history: A (the strip's first tile) before, the result after."""
    if strip is None or result is None:
        return gr.skip(), history
    return record_pair((gray(strip)[:, :28], result), history)


def studio_undo(history):
    """Step back to the previous studio result (the first one stays)."""
    history = list(history or [])
    if len(history) > 1:
        history.pop()
    if not history:
        return gr.skip(), "Nothing to undo.", history
    return history[-1], f"Back to result {len(history)}.", history


@friendly
def arithmetic(
    lab: Lab,
    model: str,
    a: str = "seed 0",
    b: str = "seed 1",
    c: str = "seed 2",
    image_a=None,
    image_b=None,
    image_c=None,
    label: str = CLASS_NAMES[0],
):
    """Latent arithmetic: decode A - B + C, next to A, B and C.

    Each operand is a random seed ("seed 3"), a class centroid ("Sneaker"), or an uploaded picture.

    Args:
        model: the generative model (dcgan, vae, cgan or flow).
        a: operand A as text.
        b: operand B as text.
        c: operand C as text.
        image_a: a picture that replaces operand A.
        image_b: a picture that replaces operand B.
        image_c: a picture that replaces operand C.
        label: the class of cgan and flow (flow also takes "any class").
    """
    operands = [
        read_upload(image).image if image is not None else operand(text)
        for text, image in ((a, image_a), (b, image_b), (c, image_c))
    ]
    images = to_uint8_list(lab.arithmetic(model, *operands, label=class_of(label)))
    return row(images[:3]), images[3]


@friendly
def keyframes(
    lab: Lab,
    store: OutputStore,
    model: str,
    keys: str = "seed 0, Sneaker, seed 5",
    steps: int = 8,
    method: str = "slerp",
    label: str = CLASS_NAMES[0],
    images: list | None = None,
):
    """A path through several latents (keyframes), as a strip of images and a GIF.

    Args:
        model: the generative model (dcgan, vae, cgan or flow).
        keys: 2 to 8 keyframes, comma-separated: seeds ("seed 3"), class names ("Sneaker"), "image 1" ...
        steps: frames per segment, 2 to 32.
        method: slerp or lerp.
        label: the class of cgan and flow (flow also takes "any class").
        images: pictures that "image 1", "image 2" ... refer to.
    """
    frames = to_uint8_list(lab.keyframes(model, parse_keyframes(keys, images or []), steps, method, class_of(label)))
    animation = gif(store, frames, boomerang=False)
    return row(frames), animation


@friendly
def inpaint(lab: Lab, image, mask, model: str = "dcgan", label: str = CLASS_NAMES[0], progress=gr.Progress()):
    """Redraw the masked part of a picture so that it fits the rest (masked regeneration).

    The picture is brought to 28x28 as everywhere; the mask is resized to 28x28 and refers to that.
    Returns the picture before and after, the model's full image, and the PSNR on the kept pixels.

    Args:
        image: the picture.
        mask: a picture of the same framing, white where to regenerate, black where to keep.
        model: the generative model (dcgan, vae, cgan or flow).
        label: the class of cgan and flow (flow also takes "any class").
    """
    prepared = read_upload(image).image
    return regenerate(lab, prepared, prepare_mask(mask), model, label, progress)


@friendly
def inpaint_editor(
    lab: Lab, editor: dict | None, model: str = "dcgan", label: str = CLASS_NAMES[0], progress=gr.Progress()
):
    """The page's version of `inpaint`: the editor's background is the image, its painted layer the mask."""
    if not editor or editor.get("background") is None:
        raise ValueError("Load an image into the editor first (a seed or an upload), then paint over a part.")
    mask = prepare_mask(painted_mask(editor.get("layers") or []))
    return regenerate(lab, editor_image(editor["background"]), mask, model, label, progress)


def regenerate(lab: Lab, prepared: np.ndarray, masked: np.ndarray, model: str, label: str, progress):
    """The masked pixels of `prepared` redrawn by the model (Lab.inpaint), as a before/after pair."""
    blended, generated, result = lab.inpaint(
        model, prepared, masked, class_of(label), progress=lambda f: progress(f, desc="Regenerating")
    )
    info = f"**Regenerated with {model}:** PSNR {result.psnr:.1f} dB on the kept pixels, in {result.seconds:.2f} s."
    return (prepared, blended), generated, info


@friendly
def editor_from_seed(lab: Lab, model: str, seed: int, label: str = CLASS_NAMES[0]):
    """Put seed `seed`'s image, enlarged, into the mask editor as its background."""
    image = to_uint8_list(lab.generate(model, seed, 1, label=class_of(label)))[0]
    return {"background": upscale(image, EDITOR_ZOOM), "layers": [], "composite": None}


def render(lab: Lab, store: OutputStore) -> gr.Dropdown:
    """Lay out the Studio tab and wire its events; returns its model picker (which gains
    a user's own models)."""
    generative = lab.generative()
    first = generative[0] if generative else None
    # It opens on seed 0's latent in the first model (its defaults), as "Use seed" would bring it in.
    shown = (first_sight(bind(studio_seed, lab), first, 0, ANY_CLASS) if first else None) or (None, None, None)
    movers = [name for name in generative if movable(name)]
    gr.Markdown(texts.STUDIO)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            model = gr.Dropdown(generative, value=first, label="Model", elem_id="studio-model")
            # "any class" first: a picture of any kind inverts well (flow: 29 dB, against 22 as a T-shirt)
            label = gr.Dropdown(CLASS_CHOICES, value=ANY_CLASS, label="Class", visible=False)
            with gr.Row():
                seed = gr.Number(
                    0, label="Seed", precision=0, minimum=0, maximum=MAX_APP_SEED, scale=3, elem_id="studio-seed-value"
                )
                use_seed = gr.Button("Use seed", scale=1, min_width=80, elem_id="studio-seed")
            image = image_input("…or your image", elem_id="studio-upload")
            invert_button = gr.Button("Invert my image", variant="primary", elem_id="studio-invert")
            gr.Markdown("**Directions** (" + (", ".join(movers) or "no model") + ": class and principal)")
            target = gr.Dropdown(list(CLASS_NAMES), value="Sneaker", label="Towards class")
            amount = gr.Slider(-MAX_MOVE, MAX_MOVE, value=0, step=0.25, label="Amount", elem_id="studio-amount")
            keep = gr.CheckboxGroup(list(CLASS_NAMES), label="Keep these classes fixed (orthogonalise)")
            principal = [
                gr.Slider(-MAX_MOVE, MAX_MOVE, value=0, step=0.25, label=f"Principal direction {i + 1}")
                for i in range(PRINCIPAL_SLIDERS)
            ]
            with gr.Row():
                apply = gr.Button("Apply", variant="primary", elem_id="studio-apply")
                undo = gr.Button("↶ Undo", elem_id="studio-undo")
        with gr.Column(scale=2):
            slider = gr.ImageSlider(
                shown[0], label="Before / after", format="png", elem_id="studio-slider", elem_classes="enlarge"
            )
            info = gr.Markdown(shown[1], elem_id="studio-info")
            classes_row = gr.Image(
                label="This latent as every class (T-shirt/top … Ankle boot)",
                format="png",
                elem_id="studio-classes",
                elem_classes="enlarge",
                visible=False,
            )
            arithmetic_box = render_arithmetic()
            keyframe_box = render_keyframes()
            mask_box = render_mask_editor()
    base = gr.State(shown[2])
    history = gr.State([] if shown[0] is None else [shown[0]])

    model.change(label_visibility, [model, label], label, api_visibility="private")
    brought_in = [
        invert_button.click(bind(invert, lab), [image, model, label], [slider, info, base], api_name="invert"),
        use_seed.click(bind(studio_seed, lab), [model, seed, label], [slider, info, base], api_name="studio_seed"),
    ]
    for event in brought_in:  # (the tools take no gr.State: an MCP client could not set it)
        event.success(remember, [slider, history], history, api_visibility="private", queue=False)
        event.success(bind(state_every_class, lab), base, classes_row, api_visibility="private")
    every_api = gr.Button(visible=False)  # api_name="every_class" for gradio_client; the page shows the row
    every_api.click(bind(every_class, lab), [model, seed, image, label], classes_row, api_name="every_class")
    apply.click(
        bind(move_latent, lab),
        [model, seed, target, amount, keep, *principal, label, base, history],
        [slider, info, history],
        api_visibility="private",
    )
    move_api = gr.Button(visible=False)  # api_name="move": the same without the page's state (seed's latent)
    move_api.click(
        bind(move, lab), [model, seed, target, amount, keep, *principal, label], [slider, info], api_name="move"
    )
    undo.click(studio_undo, history, [slider, info, history], api_visibility="private")
    # Live: the picture follows the direction sliders while they are dragged; Apply adds the result to
    # the undo history.
    for control in (amount, *principal):
        control.input(
            bind(preview, lab), [model, seed, target, amount, keep, *principal, label, base], [slider, info], **LIVE
        )

    texts_in, images_in, run, operands, result = arithmetic_box
    run.click(
        bind(arithmetic, lab), [model, *texts_in, *images_in, label], [operands, result], api_name="arithmetic"
    ).success(record_arithmetic, [operands, result, history], [slider, history], api_visibility="private")

    keys, key_images, key_steps, key_method, key_run, key_outputs = keyframe_box
    key_run.click(
        bind(keyframes, lab, store),
        [model, keys, key_steps, key_method, label, key_images],
        key_outputs,
        api_name="keyframes",
    )

    editor, from_seed, mask_run, mask_outputs, image_api, mask_api, api_button = mask_box
    from_seed.click(bind(editor_from_seed, lab), [model, seed, label], editor, api_visibility="private")
    mask_run.click(bind(inpaint_editor, lab), [editor, model, label], mask_outputs, api_visibility="private").success(
        record_pair, [mask_outputs[0], history], [slider, history], api_visibility="private"
    )
    api_button.click(bind(inpaint, lab), [image_api, mask_api, model, label], mask_outputs, api_name="inpaint")
    return model


def render_arithmetic() -> tuple:
    """The A - B + C accordion: (texts, images, button, operands strip, result)."""
    with gr.Accordion("Latent arithmetic: A − B + C", open=False):
        gr.Markdown("Each operand: a seed (`seed 3`), a class centroid (`Sneaker`), or an image.")
        with gr.Row():
            texts_in = [
                gr.Textbox("Sneaker", label="A"),
                gr.Textbox("Sandal", label="B"),
                gr.Textbox("seed 3", label="C"),
            ]
        with gr.Row():
            images_in = [image_input(f"Image {n} (optional)") for n in "ABC"]
        run = gr.Button("Compute A − B + C", elem_id="arithmetic-button")
        with gr.Row():
            operands = gr.Image(label="A, B, C", format="png", elem_classes="enlarge")
            result = gr.Image(label="A − B + C", format="png", elem_classes="enlarge", elem_id="arithmetic-result")
    return texts_in, images_in, run, operands, result


def render_keyframes() -> tuple:
    """The keyframes accordion: (keys, images, steps, method, button, [strip, animation])."""
    with gr.Accordion("Keyframes: a path through several latents, as a GIF", open=False):
        keys = gr.Textbox(
            "seed 0, Sneaker, Bag, seed 5",
            label="Keyframes, comma-separated: seed 3, a class name, or image 1, image 2 … below",
        )
        images = gr.File(label="Keyframe images (optional)", file_count="multiple", file_types=["image"])
        with gr.Row():
            steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Frames per segment")
            method = gr.Radio(["slerp", "lerp"], value="slerp", label="Method")
        run = gr.Button("Make the path", elem_id="keyframes-button")
        strip = gr.Image(label="Path", format="png", elem_classes="enlarge", elem_id="keyframes-strip")
        animation = gif_output("Animation (GIF)", 240)
    return keys, images, steps, method, run, [strip, animation]


def render_mask_editor() -> tuple:
    """The masked-regeneration accordion and the hidden file inputs of its API twin."""
    with gr.Accordion("Masked regeneration: paint over a part, the model redraws it", open=False):
        editor = ImageEditor(
            label="Paint over what to regenerate",
            image_mode="RGBA",
            brush=gr.Brush(colors=["#ff0066"], default_size=24),
            canvas_size=(28 * EDITOR_ZOOM, 28 * EDITOR_ZOOM),
            elem_id="mask-editor",
        )
        with gr.Row():
            from_seed = gr.Button("Load the seed's image", elem_id="mask-seed")
            run = gr.Button("Regenerate", variant="primary", elem_id="mask-button")
        with gr.Row():
            before_after = gr.ImageSlider(
                label="Before / after", format="png", elem_classes="enlarge", elem_id="mask-slider"
            )
            generated = gr.Image(label="Model's full image", format="png", elem_classes="enlarge", height=260)
        info = gr.Markdown()
    # api_name="inpaint" takes an image and a mask file for gradio_client; the page uses the editor.
    image_api, mask_api, api_button = Upload(visible=False), Upload(visible=False), gr.Button(visible=False)
    return editor, from_seed, run, [before_after, generated, info], image_api, mask_api, api_button


def operand(text: str) -> int | str:
    """An operand as the page writes it -> as `Lab.latent` takes it: "seed 3" or "3" -> the seed 3;
    "Sneaker" or "class Sneaker" -> the class name."""
    if not isinstance(text, str):
        raise ValueError(f'Write an operand as text ("seed 3" or a class name), got {text!r}.')
    text = text.strip()
    number = text.removeprefix("seed").strip()
    if number.lstrip("-").isdecimal():  # not isdigit: "²" is a digit that int() refuses
        return int(number)
    return text.removeprefix("class").strip()


def parse_keyframes(keys: str | None, images: list) -> list[int | str | np.ndarray]:
    """Keyframe text -> operands: comma-separated seeds ("seed 3"), class names ("Sneaker") and
    "image N", the N-th of the uploads `images` (a file path, bytes or array), prepared to 28x28."""
    if not isinstance(keys, str):
        raise ValueError('List the keyframes as text, comma-separated, e.g. "seed 0, Sneaker, image 1".')
    operands: list[int | str | np.ndarray] = []
    for key in (part.strip() for part in keys.split(",")):
        if key.lower().startswith("image"):
            number = key[5:].strip()
            if not images:
                raise ValueError(f"{key!r}: upload the keyframe images first.")
            if not number.isdecimal() or not 1 <= int(number) <= len(images):
                raise ValueError(f"{key!r}: write image 1 to image {len(images)} for the {len(images)} uploaded.")
            operands.append(prepare_upload(images[int(number) - 1]).image)
        elif key:
            operands.append(operand(key))
    return operands
