"""The one gate every request's inputs pass: files arrive as uploads, never as server paths.

Gradio checks a payload's file path against its upload folder only for payloads marked
`{"meta": {"_type": "gradio.FileData"}}`; a bare `{"path": "/etc/passwd"}` (or one nested in an
editor's layers, a gallery or a JSON value) reaches the component, which opens it. `GuardedBlocks`
looks at every input of every event before Gradio touches it and refuses any path that is not a file
Gradio itself wrote into its upload folder, with one message that says nothing about the path.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

logger = logging.getLogger("app")

REFUSAL = "Files must be sent as uploads (the client uploads them first); a path on the server is not accepted."


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


def check_inputs(inputs: list[Any]) -> None:
    """Raise a gr.Error when any input names a file that is not an upload."""
    for value in inputs:
        if any(not is_upload(path) for path in file_paths(value)):
            raise gr.Error(REFUSAL)


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose every event refuses server paths in its inputs (see `check_inputs`)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        if not explicit_call:  # a request from a client, not the app calling its own function
            try:
                check_inputs(inputs)
            except gr.Error:
                logger.info("Refused a server path in the inputs of %s", block_fn.api_name or block_fn.name)
                raise
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)
