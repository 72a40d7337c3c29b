"""The one gate every request's inputs pass before Gradio or a component touches them.

Files: Gradio checks a payload's file path against its upload folder only for payloads marked
`{"meta": {"_type": "gradio.FileData"}}`; a bare `{"path": "/etc/passwd"}` (or one nested in an
editor's layers, a gallery or a JSON value) reached the component, which opened it. Every value under
a "path" key must be a file Gradio itself wrote into its upload folder, or the request is refused with
one message that says nothing about the path. An http(s) URL is refused with its own sentence and
never fetched (a client could otherwise make the server read its own network).

Values: each input takes what its component means (a finite number within the slider's range, a
whole number for a precision-0 box such as a seed, one of a dropdown's choices, text, true or false,
an uploaded file), or gets a sentence naming it. Gradio would round a seed of 1.5 silently, and
answer NaN, text in a number box or a list in a dropdown with a raw Python message.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from .components import user_error

REFUSAL = "Files must be sent as uploads (the client uploads them first); a path on the server is not accepted."
URL_REFUSAL = (
    "Pictures are not fetched from URLs: send the picture itself (an upload; over MCP, a data: URL such as "
    "data:image/png;base64,...)."
)


def file_paths(value: Any) -> list[Any]:
    """Every value under a "path" key anywhere in a JSON-like input (dicts and lists, any depth).

    Walked with an explicit stack, so a deeply nested value cannot exhaust the recursion limit.
    """
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item and item["path"] is not None:
                found.append(item["path"])
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def is_upload(path: Any) -> bool:
    """True for a path strictly inside Gradio's upload folder (symbolic links and `..` resolved)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return False
    folder = os.path.realpath(get_upload_folder())
    resolved = os.path.realpath(os.path.abspath(path))
    return resolved.startswith(folder + os.sep)


def number_problem(block: gr.components.Component, value: Any) -> str | None:
    """What is wrong with `value` for a number box or slider, in a sentence (None: nothing)."""
    if value is None and isinstance(block, gr.Number):
        return None
    name = block.label or "A number"
    whole = isinstance(block, gr.Number) and block.precision == 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{name} must be a {'whole ' if whole else ''}number, got {short(value)}."
    if whole and value != int(value):
        return f"{name} must be a whole number, got {value}."
    if block.minimum is not None and value < block.minimum:
        return f"{name} must be at least {block.minimum:g}, got {value:g}."
    if block.maximum is not None and value > block.maximum:
        return f"{name} must be at most {block.maximum:g}, got {value:g}."
    return None


def choice_problem(block: gr.components.Component, value: Any) -> str | None:
    """What is wrong with `value` for a dropdown, radio or checkbox group (None: nothing)."""
    name = block.label or "A choice"
    allowed = [choice[1] if isinstance(choice, (tuple, list)) else choice for choice in block.choices or []]
    many = isinstance(block, gr.CheckboxGroup) or getattr(block, "multiselect", False)
    values = value if many and isinstance(value, list) else [value]
    if many and not isinstance(value, (list, type(None))):
        return f"{name} must be a list of choices from: {', '.join(map(str, allowed))}."
    for item in values:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool) or item not in allowed:
            return f"{name} must be one of: {', '.join(map(str, allowed))}; got {short(item)}."
    return None


def value_problem(block: gr.components.Component, value: Any) -> str | None:
    """What is wrong with `value` for the input component `block`, in a sentence (None: nothing)."""
    name = block.label or "An input"
    if isinstance(block, (gr.Number, gr.Slider)):
        return number_problem(block, value)
    if isinstance(block, (gr.Dropdown, gr.Radio, gr.CheckboxGroup)):
        return choice_problem(block, value)
    if isinstance(block, gr.Checkbox) and not isinstance(value, bool):
        return f"{name} must be true or false, got {short(value)}."
    if isinstance(block, (gr.Textbox, gr.Code)) and value is not None and not isinstance(value, str):
        return f"{name} must be text, got {short(value)}."
    if isinstance(block, (gr.Image, gr.ImageEditor, gr.File)) and value is not None:
        if not isinstance(value, (dict, list)) or (isinstance(value, list) and not isinstance(block, gr.File)):
            return f"{name} must be an uploaded file, got {short(value)}."
    return None


def short(value: Any) -> str:
    """A value as a message shows it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_inputs(block_fn, inputs: list[Any], state=None) -> None:
    """Raise a plain gr.Error when an input names a server file or is not a number where one is due.

    A component updated for this session (a model picker that gained the user's own model) is checked
    as the session sees it, as Gradio's own preprocessing does."""
    where = block_fn.api_name or block_fn.name
    for block, value in zip(block_fn.inputs, inputs):
        if state is not None and not block.stateful and block._id in state:  # (a gr.State holds its value there)
            block = state[block._id]
        paths = file_paths(value)
        if any(isinstance(path, str) and path.lower().startswith(("http://", "https://")) for path in paths):
            raise user_error(URL_REFUSAL, where)  # never fetched: the server's own network stays out of reach
        if any(not is_upload(path) for path in paths):
            raise user_error(REFUSAL, where)
        problem = value_problem(block, value)
        if problem:
            raise user_error(problem, where)


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose every event checks its inputs first (see `check_inputs`)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        if not explicit_call:  # a request from a client, not the app calling its own function
            check_inputs(block_fn, inputs, state)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)
