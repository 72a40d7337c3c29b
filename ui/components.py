"""Glue between Gradio and genmodels: the upload input, plain errors, and arrays for the page."""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import logging
from collections.abc import Callable

import gradio as gr
import numpy as np
import torch

from genmodels.data import CLASS_NAMES, to_uint8
from genmodels.flow import FlowSampling
from genmodels.limits import ANY_CLASS, without_server_paths
from genmodels.preprocess import MAX_FILE_BYTES, Prepared, prepare_upload
from genmodels.registry import entry_of

logger = logging.getLogger("app")


class Upload(gr.Image):
    """gr.Image that hands the handler the uploaded file untouched (a path, or bytes for a data URL).

    The stock component opens the file with PIL before the handler runs, so a non-image or a
    decompression bomb fails inside Gradio with a technical message; `genmodels.preprocess`
    decodes it instead, with limits and plain errors.
    """

    is_template = True  # rendered by the frontend's ordinary Image component

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path:
            return payload.path
        if payload.url and payload.url.startswith("data:"):
            _, comma, data = payload.url.partition(",")
            if len(data) > MAX_FILE_BYTES * 4 // 3 + 4:  # base64 is 4 characters per 3 bytes
                raise user_error(f"The pasted image is over {MAX_FILE_BYTES // 2**20} MB.", "upload")
            try:
                if not comma:
                    raise ValueError("no comma before the data")
                return base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise user_error(
                    "The pasted image is not a valid data URL (data:image/...;base64,...).", "upload"
                ) from None
        raise user_error("The upload did not arrive; please try again.", "upload")


def raw_file(file) -> str | bytes | None:
    """An editor's file as its path, or its bytes (the editor's blob upload), undecoded."""
    if file is None:
        return None
    if isinstance(file, (bytes, bytearray, memoryview)):
        return bytes(file)
    return file.path


def raw_editor_value(editor: gr.ImageEditor, payload) -> dict | None:
    """An ImageEditor / Sketchpad payload as {"background", "layers", "composite"} files, undecoded.

    The stock components decode every layer with PIL before the handler runs, whatever its size (a
    62 KB PNG can declare 8000x8000 pixels: +470 MB); `genmodels.preprocess` decodes them instead,
    with the upload limits checked first.
    """
    if payload is None:
        return None
    if payload.id is not None:  # the page sent the layers ahead, to the editor's blob store
        payload = editor.blob_storage.pop(payload.id, None)
        if payload is None:
            raise user_error("The drawing did not arrive; please draw it again.", "upload")
    return {
        "background": raw_file(payload.background),
        "layers": [raw_file(layer) for layer in payload.layers or []],
        "composite": raw_file(payload.composite),
    }


class Sketchpad(gr.Sketchpad):
    """gr.Sketchpad whose handler gets the drawing's files undecoded (see `raw_editor_value`)."""

    is_template = True

    def preprocess(self, payload):
        return raw_editor_value(self, payload)


class ImageEditor(gr.ImageEditor):
    """gr.ImageEditor whose handler gets the image and layers undecoded (see `raw_editor_value`)."""

    is_template = True

    def preprocess(self, payload):
        return raw_editor_value(self, payload)


# Options of an event that follows a control while it moves: private, no progress overlay, and only the
# newest value sent once the running request is done, so dragging never queues a backlog.
LIVE = {"api_visibility": "private", "trigger_mode": "always_last", "show_progress": "hidden"}


CLASS_CHOICES = [*CLASS_NAMES, ANY_CLASS]  # what a class picker accepts; each model shows those it takes


def class_of(label: int | str | None) -> int | str | None:
    """A class picker's value for the lab: "any class" is None (no class); a class name or index as it is."""
    return None if isinstance(label, str) and label.strip().lower() == ANY_CLASS else label


def class_choices(model: str | None) -> list[str]:
    """The classes `model` can be asked for: the ten, and "any class" for a family that samples without one."""
    entry = entry_of(model)
    return list(CLASS_CHOICES) if entry is not None and entry.any_class else list(CLASS_NAMES)


def label_visibility(model: str, label: str | None = None):
    """The class picker for `model`: shown for conditional models only, with the classes it takes
    (a value it cannot take falls back to the first class)."""
    entry = entry_of(model)
    choices = class_choices(model)
    return gr.update(
        visible=bool(entry and entry.conditional),
        choices=choices,
        value=label if label in choices else choices[0],
    )


def image_input(label: str, **kwargs) -> Upload:
    """An image input for uploads and pasted images (Gradio reads a component's config from its
    constructor's signature, so the shared settings are passed here rather than by a new __init__)."""
    return Upload(type="filepath", image_mode=None, sources=["upload", "clipboard"], label=label, **kwargs)


def gif_output(label: str, height: int, **kwargs) -> gr.Image:
    """A looping GIF (a file in the output store), enlarged; its download button is the GIF's download."""
    return gr.Image(
        label=label,
        type="filepath",
        elem_classes="enlarge",
        height=height,
        buttons=["download", "fullscreen"],
        **kwargs,
    )


def user_error(message: str, where: str) -> gr.Error:
    """A message for the user about their input: one log line, no traceback (that is for real faults)."""
    message = without_server_paths(message)
    logger.info("User error in %s: %s", where, message)
    return gr.Error(message, print_exception=False)


def flow_sampling(lab) -> FlowSampling:
    """The bundled flow checkpoint's own sampling settings: the page's defaults for steps and guidance."""
    flow = lab.models.get("flow")
    return flow.sampling if flow is not None else FlowSampling()


def first_sight(handler: Callable, *args) -> tuple | None:
    """What a tab shows before anyone asks: its handler's answer to its default inputs, computed once when
    the page is built, so every visitor sees a result without sending a request (nothing to wait for
    under load). A streaming handler's last answer; None, logged, when it cannot be computed (a model
    whose checkpoint did not load)."""
    try:
        result = handler(*args)
        if inspect.isgenerator(result):
            answers = list(result)  # a streaming handler's answers; the last is what it shows at the end
            result = answers[-1] if answers else None
    except (gr.Error, ValueError, OSError) as exc:
        logger.warning("A tab opens empty: %s", exc)
        return None
    return result if isinstance(result, tuple) else (result,)


def friendly(fn: Callable) -> Callable:
    """Turn the library's ValueError into a gr.Error the page shows; the server keeps serving.

    A generator (a handler that streams) stays a generator, so Gradio still streams it; an async
    generator stays one too.
    """
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream_async(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except ValueError as exc:
                raise user_error(str(exc), fn.__name__) from exc

        return stream_async

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as exc:
                raise user_error(str(exc), fn.__name__) from exc

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise user_error(str(exc), fn.__name__) from exc

    return wrapper


def bind(fn: Callable, *args) -> Callable:
    """`fn` with its first arguments (the lab, the file store) bound: a function whose signature,
    name, docstring and type hints are those of `fn` without them.

    Gradio names the API parameters after the signature, shows the docstring, and recognises
    `gr.Request` / `gr.SelectData` parameters by their type hints (which a functools.partial hides).
    """

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def bound(*rest, **kwargs):
            async for item in fn(*args, *rest, **kwargs):
                yield item

    elif inspect.isgeneratorfunction(fn):  # Gradio streams only what is a generator function itself

        @functools.wraps(fn)
        def bound(*rest, **kwargs):
            yield from fn(*args, *rest, **kwargs)

    else:

        @functools.wraps(fn)
        def bound(*rest, **kwargs):
            return fn(*args, *rest, **kwargs)

    signature = inspect.signature(fn)
    bound.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(args) :])
    return bound


def read_upload(image, what: str = "an image", preparation: str = "auto") -> Prepared:
    """The 28x28 preparation of an upload (file path or bytes) or a drawing (Sketchpad value)."""
    if isinstance(image, dict):  # Sketchpad / ImageEditor value: the flattened layers
        image = image.get("composite")
    if image is None:
        raise ValueError(f"Upload or draw {what} first.")
    return prepare_upload(image, preparation)


def to_uint8_list(images: torch.Tensor) -> list[np.ndarray]:
    """Model output (N, 1, 28, 28) in [-1, 1] -> list of uint8 (28, 28)."""
    return list(to_uint8(images).numpy())


def gray(image) -> np.ndarray:
    """A page image (H, W) or (H, W, 3) as uint8 (H, W)."""
    array = np.asarray(image)
    return array[..., 0] if array.ndim == 3 else array
