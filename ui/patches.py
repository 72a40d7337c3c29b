"""Every change this app makes to Gradio's own code, in one place, applied once when the page is built.

Each replaces a Gradio 6.31 function whose behaviour was wrong or too slow for this app; the reasons,
the measurements and the test that checks each are in docs/serving.md ("Changes to Gradio"). They
are written against that version's internals, so `apply` refuses any other version rather than
patching code it has not read.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from pathlib import Path

import anyio
import gradio as gr
from gradio import processing_utils, utils
from PIL import Image

from genmodels.registry import generative_names

GRADIO_VERSION = "6.31.0"  # the version whose internals these patches were written for
# What an MCP client is told a file input takes (Gradio says "a http or https url", then cannot fetch it).
MCP_FILE_FORMAT = "an image as a data: URL (data:image/png;base64,...); http(s) URLs are not fetched"
MCP_FILE_SENTENCE = (
    " Send each picture itself, as a data: URL (data:image/png;base64,...): the server does not fetch"
    " http(s) URLs or read its own files."
)
YOURS = r"^yours-(vae|dcgan|flow)-[0-9a-f]+$"  # a user's own model (genmodels.registry: YOURS_PREFIX)
_applied: set[str] = set()
_lock = threading.Lock()


def apply(fast_file_checks: bool = False) -> None:
    """Apply the patches (once per process, whatever the number of pages built); `fast_file_checks`
    also replaces Gradio's file-access checks with faster ones (opt-in: they are a security check)."""
    if gr.__version__ != GRADIO_VERSION:
        raise RuntimeError(
            f"ui/patches.py was written for Gradio {GRADIO_VERSION}, found {gr.__version__}: "
            "pin gradio as requirements.txt does, or check each patch against the new version."
        )
    wanted = {
        "atomic_cache_writes": atomic_cache_writes,
        "mcp_results": mcp_results,
        "mcp_file_inputs": mcp_file_inputs,
    }
    if fast_file_checks:
        wanted["fast_file_checks"] = use_fast_file_checks
    with _lock:
        for name, patch in wanted.items():
            if name not in _applied:
                patch()
                _applied.add(name)


def applied() -> set[str]:
    """The names of the patches applied so far in this process."""
    return set(_applied)


# --- Gradio's file checks, opt-in (app.py --fast-file-checks) ---------------------------------------

GRADIO_FILE_CHECKS = (utils.is_in_or_equal, utils.is_allowed_file)  # Gradio's own, which the tests compare with


@functools.lru_cache(maxsize=256)
def _resolved_folder(folder: str) -> Path:
    """A folder files are checked against (Gradio's cache, the working and temp folders, BLOCKED_PATHS),
    resolved once: none of them moves while the app runs."""
    return utils.abspath(folder).resolve()


def is_in_or_equal(path_1: str | Path, path_2: str | Path) -> bool:
    """gradio.utils.is_in_or_equal, resolving the folder `path_2` once (see `use_fast_file_checks`)."""
    return utils.abspath(path_1).resolve().is_relative_to(_resolved_folder(str(path_2)))


def is_allowed_file(path: Path, blocked_paths, allowed_paths, created_paths) -> tuple[bool, str]:
    """gradio.utils.is_allowed_file with the same answers, resolving `path` once (see `use_fast_file_checks`)."""
    lowered = utils.abspath(str(path).lower()).resolve()
    if any(lowered.is_relative_to(_resolved_folder(str(folder).lower())) for folder in blocked_paths):
        return False, "in_blocklist"
    resolved = utils.abspath(path).resolve()
    if any(resolved.is_relative_to(_resolved_folder(str(folder))) for folder in allowed_paths):
        return True, "allowed"
    if any(resolved.is_relative_to(_resolved_folder(str(folder))) for folder in created_paths):
        return True, "created"
    return False, "not_created_or_allowed"


def use_fast_file_checks() -> None:
    """Check each file Gradio saves or serves against its folders with one path resolution, not 14.

    Gradio 6.31 resolves both the file and every folder (the four BLOCKED_PATHS, the working and temp
    folders, its cache) for each comparison: about 14 `realpath` walks per picture written and again per
    picture downloaded, 11% of the server's CPU under load. The folders are resolved once now; files
    are still resolved every time, so a link cannot smuggle a blocked file out.
    """
    utils.is_in_or_equal = is_in_or_equal
    utils.is_allowed_file = is_allowed_file
    processing_utils.is_in_or_equal = is_in_or_equal


# --- atomic writes into Gradio's cache ---------------------------------------------------------------


def write_once(path: Path, data: bytes) -> None:
    """Write `data` to `path` under a temporary name and rename it into place; leave an existing
    file of the same size alone (Gradio's cache folders are named by a hash of the bytes)."""
    if path.exists() and path.stat().st_size == len(data):
        return
    handle, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    os.replace(staging, path)


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, writing atomically (see `atomic_cache_writes`)."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    write_once(path, data)
    return str(path)


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    """gradio.processing_utils.save_bytes_to_cache, writing atomically (see `atomic_cache_writes`)."""
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    if not Path(file_name).suffix:
        file_name += processing_utils.detect_audio_format(data)
    path = (folder / Path(file_name).name).resolve()
    write_once(path, data)
    return str(path)


# --- MCP: results as images, file inputs as data: URLs ----------------------------------------------


def _pictures(output) -> list:
    """An output as MCP content items: a before/after pair or a gallery becomes its pictures."""
    if isinstance(output, (list, tuple)) and output and all(isinstance(item, dict) for item in output):
        files = [item.get("image", item) for item in output]
        if all(isinstance(file, dict) and "path" in file for file in files):
            return files
    return [output]


async def _mcp_results(self, job) -> list:
    """gradio.mcp.GradioMCPServer._execute_tool_without_progress, returning each output of a job."""
    result = await anyio.to_thread.run_sync(job.result)
    outputs = list(result) if isinstance(result, tuple) else [result]
    return [item for output in outputs for item in _pictures(output)]


def mcp_results() -> None:
    """Let MCP clients get each output of a tool, so pictures come back as images.

    Gradio 6.31's MCP server wraps a queued tool's result in a list; for an action with several
    outputs (all of ours but ping and settings) that is one tuple, which it turns into a single text.
    Unpacked (and before/after pairs and galleries into their pictures), each picture becomes an MCP
    image and each text a text.
    """
    from gradio.mcp import GradioMCPServer

    GradioMCPServer._execute_tool_without_progress = _mcp_results


def atomic_cache_writes() -> None:
    """Make Gradio write the pictures it caches for clients atomically, once.

    Gradio 6.31 writes every image output (and bytes outputs) to cache/<hash of the bytes>/image.png
    with `write_bytes`, truncating and refilling the file in place, even when it is already there. Two
    requests with the same output (the same seed, the same example image) rewrote the file while
    another client was downloading it: "Too little data for declared Content-Length", failed requests
    and 0-byte PNGs. Its own `save_file_to_cache` already writes under a temporary name and renames;
    these two now do too, and skip a file that is already in place. Components call them through the
    module, so replacing the module's functions reaches every component.
    """
    processing_utils.save_pil_to_cache = save_pil_to_cache
    processing_utils.save_bytes_to_cache = save_bytes_to_cache


_gradio_simplify = None  # GradioMCPServer.simplify_filedata_schema as Gradio wrote it


def _with_format(node, old: str, new: str):
    """A JSON schema with every file input's "format" `old` said as `new` instead."""
    if isinstance(node, dict):
        return {
            key: new if key == "format" and value == old else _with_format(value, old, new)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_with_format(item, old, new) for item in node]
    return node


def _with_yours(node):
    """A JSON schema whose model pickers (an enum of the registry's generative models) also take a user's
    own model's name, which the Train tab adds to the caller's session after the schema was made."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list) and set(node["enum"]) & set(generative_names()):
            rest = {key: value for key, value in node.items() if key not in ("enum", "type")}
            return {**rest, "anyOf": [{"type": "string", "enum": node["enum"]}, {"type": "string", "pattern": YOURS}]}
        return {key: _with_yours(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_yours(item) for item in node]
    return node


def _simplified_schema(self, schema):
    """GradioMCPServer.simplify_filedata_schema, telling clients to send pictures as data: URLs, and
    letting the model pickers name a model the caller trained or brought."""
    simplified, positions = _gradio_simplify(self, schema)
    simplified = _with_format(simplified, "Gradio File Input - a http or https url to a file", MCP_FILE_FORMAT)
    return _with_yours(simplified), positions


def mcp_file_inputs() -> None:
    """Tell MCP clients that a file goes as a data: URL, the one form this server takes from them, and
    let a model picker take the name of a model the caller trained.

    Gradio 6.31's tool schemas describe each file input as "a http or https url to a file", and its
    descriptions send an agent to an upload tool this server does not have; the app refuses URLs
    (`ui/guard.py`: fetching them would let a client make the server read its own network). Both texts
    now say what works: the picture itself as a data: URL. A picker's schema is its choices when the
    page was built, so the MCP library refused "yours-vae-..." before the app (whose guard checks the
    session's own choices) could see it.
    """
    global _gradio_simplify
    from gradio.mcp import GradioMCPServer

    _gradio_simplify = GradioMCPServer.simplify_filedata_schema
    GradioMCPServer.simplify_filedata_schema = _simplified_schema
    GradioMCPServer._file_data_tool_description = property(lambda self: MCP_FILE_SENTENCE)


# Every patch by name, as docs/serving.md's table lists them; `apply` applies all but the opt-in one.
PATCHES = {patch.__name__: patch for patch in (atomic_cache_writes, mcp_results, mcp_file_inputs, use_fast_file_checks)}
