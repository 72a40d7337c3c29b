"""The output file store: downloadable results (PNG grids, GIFs) written where Gradio can serve them."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

OUTPUT_DIR = Path(tempfile.gettempdir()) / "genmodels-app"
MAX_FILES = 500  # files of each kind kept on disk; the oldest go first
MIN_AGE_S = 600  # ...but none younger than this: Gradio may still be copying it
PRUNE_EVERY = 20  # writes between two prunings (each scans the folder), so at most 20 files over


class OutputStore:
    """Result files named by their content, written atomically, the oldest pruned.

    Gradio copies a returned path into its cache after the handler returns, so a file handed out must
    survive until then, whatever other requests (or other servers sharing the folder) do:
    - each write goes to its own temporary name, then replaces the final name atomically, so two
      requests making the same picture never trip over each other's half-written file;
    - an existing file is rewritten too, which makes it the newest and last in line for eviction;
    - eviction only removes files older than `min_age_s`, never one just handed out.
    """

    def __init__(self, folder: str | Path = OUTPUT_DIR, max_files: int = MAX_FILES, min_age_s: float = MIN_AGE_S):
        self.folder = Path(folder)
        self.max_files = max_files
        self.min_age_s = min_age_s
        self._lock = threading.Lock()  # one pruning at a time
        self._writes: dict[str, int] = {}  # files written per suffix, to prune every PRUNE_EVERY writes

    def save(self, data: bytes, suffix: str) -> str:
        """Write `data` as <content hash><suffix> and return its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
        with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".tmp-", suffix=suffix, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)
        with self._lock:
            self._writes[suffix] = self._writes.get(suffix, 0) + 1
            if (self._writes[suffix] - 1) % PRUNE_EVERY == 0:  # the first write, then every PRUNE_EVERY
                self.prune(suffix)
        return str(path)

    def prune(self, suffix: str) -> None:
        """Delete the oldest `suffix` files beyond max_files, sparing any younger than min_age_s."""
        entries = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(suffix) and not entry.name.startswith("."):
                try:
                    entries.append((entry.stat().st_mtime, entry.path))
                except FileNotFoundError:  # removed meanwhile by another server sharing the folder
                    continue
        if len(entries) <= self.max_files:
            return
        entries.sort()
        oldest_kept = time.time() - self.min_age_s
        for mtime, name in entries[: len(entries) - self.max_files]:
            if mtime < oldest_kept:
                Path(name).unlink(missing_ok=True)
