"""The user's own pictures as a training set: image files, folders or one .zip in, 28x28 uint8 out.

Each picture goes through the Round trip tab's preparation (`preprocess.prepare_upload`, "auto"), so a
model learns from exactly what the page shows. Files that are not images, or are corrupt, are skipped
and counted. A zip is read in memory, never extracted: its entries are checked before any is read
(no absolute or `..` paths, a cap on entries and on their declared sizes, a cap on the compression
ratio), and each entry is read with a hard cap whatever its header declares.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .preprocess import MAX_FILE_BYTES, prepare_upload

MIN_PICTURES = 16  # fewer give a model nothing to generalise from
MAX_PICTURES = 10_000  # more are left out (the first ones in name order are kept)
MAX_ZIP_ENTRIES = 20_000
MAX_ZIP_BYTES = 512 * 2**20  # uncompressed, all entries together, as the zip declares them
MAX_RATIO = 200  # uncompressed / compressed size of an entry; images compress far less (PNG: ~1)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Pictures:
    """Prepared pictures and what happened to the rest."""

    images: np.ndarray  # (N, 28, 28) uint8
    names: list[str] = field(default_factory=list)  # one per image
    skipped: list[str] = field(default_factory=list)  # "name: why", for files that are not usable pictures
    capped: int = 0  # usable pictures left out over MAX_PICTURES

    def summary(self) -> str:
        """One sentence: how many pictures, how many skipped or left out."""
        text = f"{len(self.images)} pictures"
        if self.skipped:
            text += f"; {len(self.skipped)} file(s) skipped (not a usable image)"
        if self.capped:
            text += f"; {self.capped} left out over the limit of {MAX_PICTURES:,}"
        return text + "."


def safe_zip_entries(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The zip's file entries in name order, or a ValueError when the zip is unsafe or too large."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ValueError(f"The zip holds {len(infos):,} entries; the limit is {MAX_ZIP_ENTRIES:,}.")
    total = 0
    for info in infos:
        name = info.filename.replace("\\", "/")
        path = PurePosixPath(name)
        if name.startswith("/") or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
            raise ValueError(f"The zip holds an entry with an unsafe path ({name!r}); it was not opened.")
        total += info.file_size
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 2**20:
            raise ValueError(
                f"The zip entry {name!r} expands {info.file_size // max(info.compress_size, 1)}-fold: "
                "it looks like a zip bomb, so the zip was not opened."
            )
    if total > MAX_ZIP_BYTES:
        raise ValueError(f"The zip would expand to {total / 2**20:,.0f} MB; the limit is {MAX_ZIP_BYTES // 2**20} MB.")
    return sorted((info for info in infos if not info.is_dir()), key=lambda info: info.filename)


def _zip_files(path: Path) -> list[tuple[str, bytes | None, str | None]]:
    """(name, bytes or None, why not) for each file entry of the zip at `path`."""
    try:
        with zipfile.ZipFile(path) as archive:
            found = []
            for info in safe_zip_entries(archive):
                if info.file_size > MAX_FILE_BYTES:
                    found.append((info.filename, None, f"over {MAX_FILE_BYTES // 2**20} MB"))
                    continue
                try:
                    with archive.open(info) as handle:
                        data = handle.read(MAX_FILE_BYTES + 1)  # never more, whatever the header says
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                    found.append((info.filename, None, f"unreadable ({exc})"))
                    continue
                if len(data) > MAX_FILE_BYTES:
                    found.append((info.filename, None, f"over {MAX_FILE_BYTES // 2**20} MB"))
                else:
                    found.append((info.filename, data, None))
            return found
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path.name} is not a readable zip file ({exc}).") from exc


def _sources(paths: list[str | Path]) -> list[tuple[str, str | bytes | None, str | None]]:
    """(name, source, why not) for every picture candidate: files as they are, folders' files and zips
    in name order (not recursive), zips' entries."""
    found: list[tuple[str, str | bytes | None, str | None]] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix.lower() == ".zip":
                    found += _zip_files(child)
                elif child.is_file():
                    found.append((child.name, str(child), None))
        elif path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path)):
            found += _zip_files(path)
        elif path.is_file():
            found.append((path.name, str(path), None))
        else:
            raise ValueError(f"{path.name}: no such file or folder.")
    return found


def load_pictures(paths: list[str | Path] | str | Path, minimum: int = MIN_PICTURES) -> Pictures:
    """Every usable picture in `paths` (files, folders, zips), prepared to 28x28, at most MAX_PICTURES;
    a ValueError when fewer than `minimum` are usable (or a zip is unsafe)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sources = _sources(list(paths))
    if not sources:
        raise ValueError(
            "No files were given (an empty folder or zip?). Add at least "
            f"{minimum} pictures of the kind you want the model to learn."
        )
    images, names, skipped, capped = [], [], [], 0
    for name, source, problem in sources:
        if problem is None and len(images) >= MAX_PICTURES:
            capped += 1
            continue
        if problem is None:
            try:
                images.append(prepare_upload(source).image)
                names.append(name)
                continue
            except ValueError as exc:
                problem = str(exc)
        skipped.append(f"{name}: {problem}")
    if len(images) < minimum:
        raise ValueError(
            f"Only {len(images)} usable picture(s) among {len(sources)} file(s)"
            + (f" ({len(skipped)} skipped: not images, corrupt or too large)" if skipped else "")
            + f"; a model needs at least {minimum} to learn from."
        )
    stacked = np.stack(images).astype(np.uint8) if images else np.zeros((0, 28, 28), np.uint8)
    return Pictures(images=stacked, names=names, skipped=skipped, capped=capped)


def load_picture_folder(folder: str | Path) -> Pictures:
    """The pictures of one folder or zip (the training scripts' --images)."""
    return load_pictures([folder])
