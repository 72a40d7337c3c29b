"""How the app serves: one first-come line for every action, worker threads, file access and memory.

The reasoning and the measurements behind each number are in docs/serving.md.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import gradio as gr

from genmodels.preprocess import MAX_FILE_BYTES

from .texts import CSS

ROOT = Path(__file__).resolve().parent.parent
QUEUE_SIZE = 64  # requests waiting at most; more get "queue full" at once rather than a long wait
# Requests computed at once over every event (one first-come line): one per core, each on one thread.
COMPUTING = max(2, os.cpu_count() or 1)
MAX_THREADS = COMPUTING  # Gradio's worker threads (uploads, downloads and ping are coroutines and need none)
STATUS_UPDATE_S = 1.0  # seconds between the queue-position messages to waiting clients
QUEUE_POLL_S = 0.005  # how often the queue looks for a free worker or a new request (Gradio: every 1 ms)
MMAP_THRESHOLD = 8 * 1024 * 1024  # bytes: larger blocks come straight from the OS; see release_freed_memory()
TRIM_THRESHOLD = 32 * 1024 * 1024  # bytes free at a heap's top before it is handed back; see release_freed_memory()
TOP_PAD = 2 * 1024 * 1024  # bytes a worker thread's heap keeps beyond its top; see release_freed_memory()
ARENAS = 2  # glibc heaps shared by all threads; see release_freed_memory()
IDLE_TRIM_S = 5.0  # seconds without work after which the heaps' free memory goes back; see trim_when_idle()
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
GRADIO_ENVIRONMENT = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "500", "GRADIO_ANALYTICS_MAX_EVENTS": "1000"}


def trim_memory() -> bool:
    """Hand the memory glibc's heaps hold free back to the OS now; False off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(ctypes.c_size_t(0))
    except (OSError, AttributeError):
        return False
    return True


def trim_when_idle(after: threading.Thread | None = None, every_s: float = IDLE_TRIM_S) -> threading.Thread:
    """Start a daemon thread that hands freed heap memory back whenever the server has been idle for
    `every_s` (the process used under 5% of a core), first once `after` (the warm-up) has ended.

    A heap keeps up to TRIM_THRESHOLD free at its top between requests, so that the next one does not
    fault its pages in again; once the requests stop, that memory goes back."""

    def loop() -> None:
        if after is not None:
            after.join()
        last = time.process_time()
        while trim_memory():
            time.sleep(every_s)
            now = time.process_time()
            while now - last > 0.05 * every_s:  # busy: look again later
                last = now
                time.sleep(every_s)
                now = time.process_time()
            last = now

    thread = threading.Thread(target=loop, name="memory-trim", daemon=True)
    thread.start()
    return thread


def set_environment() -> None:
    """Gradio's settings from GRADIO_ENVIRONMENT, where the environment does not set them (app.main)."""
    for name, value in GRADIO_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


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
    """Fix glibc's malloc thresholds, so memory freed after a request goes back to the OS without every
    request paying for fresh pages.

    glibc raises its mmap threshold each time a block above it is freed (up to 32 MB, and the trim
    threshold to twice that); from then on tensors come from its heap arenas, which concurrent requests
    fragment so that freed memory is never handed back (+342 MB under load with the dynamic thresholds).
    Fixed, a block of MMAP_THRESHOLD or more is mapped for its request and unmapped after, and a heap
    hands back what is free at its top beyond TRIM_THRESHOLD.

    The threshold was 256 KiB (+103 MB under load): then each of the flow's activations (16 images,
    guided as a batch of 32: up to ~10 MB each) was a fresh mapping, 280,000 page faults and 1.5 s per
    /generate against 0.71 s in a plain process. At 8 MiB with the trim threshold at 32 MiB a flow call
    on a worker thread faults about 200 times (20,000 with glibc's defaults; 36,000 at 4 and 16 MiB;
    69,000 at 8 MiB with the default 128 KiB trim threshold, as the heap shrank and grew back every pass). TOP_PAD, 2 MiB beyond a heap's top, had stopped the
    same shrinking for GAN inversion on worker threads (28,000 faults per cGAN inversion, 0.37 s of CPU
    against 0.26 s). `malloc_trim` cannot shrink the top of a thread's own heap, so with a heap per
    thread each kept up to TRIM_THRESHOLD for good (idle: 751 MB against 725 MB); ARENAS heaps shared
    by every thread hand it back when idle (`trim_when_idle`). Does nothing off glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(MMAP_THRESHOLD))  # -3: M_MMAP_THRESHOLD
        libc.mallopt(ctypes.c_int(-1), ctypes.c_int(TRIM_THRESHOLD))  # -1: M_TRIM_THRESHOLD
        libc.mallopt(ctypes.c_int(-2), ctypes.c_int(TOP_PAD))  # -2: M_TOP_PAD
        libc.mallopt(ctypes.c_int(-8), ctypes.c_int(ARENAS))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return
