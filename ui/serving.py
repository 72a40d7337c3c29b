"""How the app serves: one first-come line for every action, worker threads, file access and memory.

The reasoning and the measurements behind each number are in docs/serving.md.
"""

from __future__ import annotations

import ctypes
import functools
import os
import tempfile
from pathlib import Path

import anyio
import gradio as gr
from gradio import processing_utils, utils
from PIL import Image

from genmodels.preprocess import MAX_FILE_BYTES

from .texts import CSS

ROOT = Path(__file__).resolve().parent.parent
QUEUE_SIZE = 64  # requests waiting at most; more get "queue full" at once rather than a long wait
# Requests computed at once over every event (one first-come line): one per core, each on one thread.
COMPUTING = max(2, os.cpu_count() or 1)
MAX_THREADS = COMPUTING  # Gradio's worker threads (uploads, downloads and ping are coroutines and need none)
STATUS_UPDATE_S = 1.0  # seconds between the queue-position messages to waiting clients
QUEUE_POLL_S = 0.005  # how often the queue looks for a free worker or a new request (Gradio: every 1 ms)
MMAP_THRESHOLD = 256 * 1024  # bytes; see release_freed_memory()
TOP_PAD = 2 * 1024 * 1024  # bytes a worker thread's heap keeps beyond its top; see release_freed_memory()
# Files the server may hand out: only what Gradio itself created (uploads, outputs moved to its cache);
# never the checkpoints, training runs, the repository's history or the Hub's local cache and token.
ALLOWED_PATHS: list[str] = []
BLOCKED_PATHS = [
    str(ROOT / "checkpoints"),
    str(ROOT / "runs"),
    str(ROOT / ".git"),
    str(Path.home() / ".cache" / "huggingface"),
]
LAUNCH_OPTIONS = {  # for demo.launch(), in app.main() and the tests
    "css": CSS,
    "max_file_size": MAX_FILE_BYTES,
    "show_error": True,
    # Worker threads for all events together: one per core. Each thread that runs the models keeps its
    # own oneDNN kernel caches, so Gradio's default of 40 costs memory and buys nothing on 2 cores.
    "max_threads": MAX_THREADS,
    "allowed_paths": ALLOWED_PATHS,
    "blocked_paths": BLOCKED_PATHS,
    # Every API endpoint is also an MCP tool at /gradio_api/mcp/ (the same actions, nothing new).
    "mcp_server": True,
}

# Gradio summarises its per-event analytics with pandas after every event, over up to 10,000
# records: under load that work grows with each request. Summarise every 500 events over the last
# 1,000 instead (Gradio's own settings, read when the queue is made; the environment overrides them).
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")


def default_threads() -> int:
    """CPU threads per request: the cores shared among the requests computed at once (at least 1)."""
    return max(1, (os.cpu_count() or 1) // COMPUTING)


def queue(demo: gr.Blocks) -> None:
    """One first-come line: COMPUTING requests at once over every computing event, at most QUEUE_SIZE waiting.

    By default each event has its own concurrency group and Gradio picks the next group to serve at
    random, so an action asked for twice as often as another waits twice as long (median 3.7 s against
    0.5 s for the rest at 32 clients). The no-op `ping` keeps its own group, so a health check answers
    even when the line is long. Queue positions go out once a second, not to every waiting client each
    time a job starts (54 vs 42 ms of CPU per request).
    """
    demo.queue(default_concurrency_limit=COMPUTING, max_size=QUEUE_SIZE, status_update_rate=STATUS_UPDATE_S)
    # Gradio's queue loop polls every millisecond, busy or idle: 8% of a core doing nothing, and time the
    # event loop cannot spend on requests under load. Every 5 ms costs a request at most 5 ms.
    demo._queue.sleep_when_free = QUEUE_POLL_S
    for block_fn in demo.fns.values():
        if block_fn.api_name != "ping":
            block_fn.concurrency_id = "compute"
            block_fn.concurrency_limit = COMPUTING


def release_freed_memory() -> None:
    """Serve allocations of MMAP_THRESHOLD bytes and more (tensors, images) straight from the OS.

    glibc raises its mmap threshold each time such a block is freed (up to 32 MB); from then on
    tensors come from its heap arenas, which concurrent requests fragment so that freed memory is
    never handed back (+342 MB under load with the dynamic threshold, +77 MB at 64 KiB, +103 MB at
    256 KiB). Below 256 KiB the per-pass buffers of GAN inversion (a hundred generator passes per image)
    went to the OS and back each time: /invert computed 0.43 s at 64 KiB, 0.35 s at 256 KiB.

    With the threshold fixed, the heap of a worker thread (where requests are computed) shrank and grew
    back on every pass: 28,000 page faults per cGAN inversion, 0.37 s of CPU on a worker thread against
    0.26 s on the main one (a larger M_TRIM_THRESHOLD did not stop it). A top pad of TOP_PAD, 2 MiB,
    does: 5-18 faults, 0.26-0.30 s on either thread (1 MiB still faulted). Does nothing off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD))  # -3: M_MMAP_THRESHOLD
        libc.mallopt(ctypes.c_int(-2), ctypes.c_int(TOP_PAD))  # -2: M_TOP_PAD
    except (OSError, AttributeError):
        return


GRADIO_FILE_CHECKS = (utils.is_in_or_equal, utils.is_allowed_file)  # Gradio's own, which the tests compare with


@functools.lru_cache(maxsize=256)
def _resolved_folder(folder: str) -> Path:
    """A folder files are checked against (Gradio's cache, the working and temp folders, BLOCKED_PATHS),
    resolved once: none of them moves while the app runs."""
    return utils.abspath(folder).resolve()


def is_in_or_equal(path_1: str | Path, path_2: str | Path) -> bool:
    """gradio.utils.is_in_or_equal, resolving the folder `path_2` once (see `fast_file_checks`)."""
    return utils.abspath(path_1).resolve().is_relative_to(_resolved_folder(str(path_2)))


def is_allowed_file(path: Path, blocked_paths, allowed_paths, created_paths) -> tuple[bool, str]:
    """gradio.utils.is_allowed_file with the same answers, resolving `path` once (see `fast_file_checks`)."""
    lowered = utils.abspath(str(path).lower()).resolve()
    if any(lowered.is_relative_to(_resolved_folder(str(folder).lower())) for folder in blocked_paths):
        return False, "in_blocklist"
    resolved = utils.abspath(path).resolve()
    if any(resolved.is_relative_to(_resolved_folder(str(folder))) for folder in allowed_paths):
        return True, "allowed"
    if any(resolved.is_relative_to(_resolved_folder(str(folder))) for folder in created_paths):
        return True, "created"
    return False, "not_created_or_allowed"


def fast_file_checks() -> None:
    """Check each file Gradio saves or serves against its folders with one path resolution, not 14.

    Gradio 6.31 resolves both the file and every folder (the four BLOCKED_PATHS, the working and temp
    folders, its cache) for each comparison: about 14 `realpath` walks per picture written and again per
    picture downloaded, 11% of the server's CPU under load. The folders are resolved once now; files
    are still resolved every time, so a link cannot smuggle a blocked file out.
    """
    utils.is_in_or_equal = is_in_or_equal
    utils.is_allowed_file = is_allowed_file
    processing_utils.is_in_or_equal = is_in_or_equal


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


def mcp_images_as_images() -> None:
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
