"""From a user's picture or drawing to a 28x28 Fashion-MNIST-like image, one visible step at a time.

`load_image` decodes an upload safely (size limits before decoding, truncated files, EXIF
orientation, every PIL mode, transparency) into 8-bit grayscale. `prepare` then mimics how
Fashion-MNIST was made: light-on-dark, cropped to the item, the long side resized to 28 pixels,
centred. It records each step so the app can show what it did.

A picture that already looks like Fashion-MNIST (square, dark background, the item filling the frame:
a test image, or an enlargement of one) skips those steps: it is only reduced to 28x28, exactly for a
nearest-neighbour enlargement, by a box filter otherwise. The full steps would crop and rescale it
again and change pixels the user never asked to change.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from .editing import resize

MAX_PIXELS = 4096 * 4096  # refuse larger images before decoding them (decompression bombs)
MAX_FILE_BYTES = 20 * 2**20  # 20 MB
MIN_SIDE = 8  # smaller pictures hold too little to say what they show
WORK_SIDE = 1024  # large uploads are shrunk to this long side first; finer detail is lost at 28 px anyway
SIZE = 28
EDGE_THRESHOLD = 0.05  # the crop keeps faint edges down to this fraction (Fashion-MNIST items fill 28 px)
FADED = 0.5  # strokes count as too thin when shrinking leaves them below half their brightness
BACKGROUND = (255, 255, 255)  # transparent areas become white paper, inverted later like a photo's background
DARK_BORDER = 32  # a Fashion-MNIST-like picture's border is this dark or darker (test set: median 0, 99.9% <= 3)
FRAMED = 24  # ...and its item spans at least this many of the 28 pixels (test set: every image 25 or more)
PREPARATIONS = {  # how an upload is brought to 28x28: the choice the page offers
    "auto": "Fashion-MNIST-like pictures as they are, the others like a photo or drawing",
    "full": "always like a photo or drawing: invert a light background, crop, thicken thin strokes, centre",
    "resize": "only reduced to 28x28 (a box filter), nothing else",
}


@dataclass
class Prepared:
    """The 28x28 result and the named intermediate images (uint8, (H, W)) that led to it."""

    image: np.ndarray
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)
    summary: str = ""  # one sentence on what was done to the picture, for the page


def load_image(source: str | Path | bytes | Image.Image | np.ndarray) -> np.ndarray:
    """Decode a file path, bytes, PIL image or array into uint8 grayscale (H, W); ValueError if unusable."""
    if isinstance(source, np.ndarray):
        source = _array_to_pil(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source)
    _check_size(image.size)
    try:
        image.seek(0)  # animated GIF / WebP / multi-page TIFF: the first frame
        if image.format == "JPEG":
            image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # let libjpeg decode at reduced size
        image = ImageOps.exif_transpose(image)
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"The image file is damaged or truncated and could not be decoded ({exc}).") from exc
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    return _to_gray(image)


def _open(source: str | Path | bytes) -> Image.Image:
    """Open (lazily: header only) an image file or bytes, checking the byte size first."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"No image file at {path}.")
        size = path.stat().st_size
        opened = path
    else:
        size = len(source)
        opened = io.BytesIO(source)
    if size == 0:
        raise ValueError("The uploaded file is empty (0 bytes).")
    if size > MAX_FILE_BYTES:
        raise ValueError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(opened)
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(
            "This file is not an image we can read. Use PNG, JPEG, WebP, BMP, TIFF or GIF "
            f"of at most {MAX_PIXELS:,} pixels."
        ) from exc
    except OSError as exc:
        raise ValueError(f"The file could not be read as an image ({exc}).") from exc


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ValueError(f"The image is {width}x{height} = {width * height:,} pixels; the limit is {MAX_PIXELS:,}.")
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"The image is {width}x{height}; each side must be at least {MIN_SIDE} pixels.")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    """An (H, W), (H, W, 1|2|3|4) array (any numeric dtype) as a PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(f"Expected an image array of shape (H, W) or (H, W, C), got {array.shape}.")
    _check_size((array.shape[1], array.shape[0]))
    if array.dtype != np.uint8:
        values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = values.max() if values.max() > 1.0 else 1.0  # floats in [0, 1] or integers of any range
        array = np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    return Image.fromarray(array, mode={2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]])


def _to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 grayscale, compositing transparency onto white paper."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
        return scaled.round().astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(paper, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8).copy()


def reduce(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A square (H, H) uint8 picture at size x size: itself at that size; for an integer multiple,
    the top-left pixel of each block when every block is one value (a nearest-neighbour enlargement,
    undone exactly), else the block means (a box filter); for other sizes PIL's box filter."""
    side = gray.shape[0]
    if side == size:
        return gray
    if side % size == 0:
        factor = side // size
        blocks = gray.reshape(size, factor, size, factor)
        if (blocks == blocks[:, :1, :, :1]).all():
            return blocks[:, 0, :, 0].copy()
        return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.BOX))


def fashion_like(gray: np.ndarray, size: int = SIZE) -> np.ndarray | None:
    """The picture reduced to size x size if it already looks like Fashion-MNIST, else None.

    Fashion-MNIST-like: square, a dark border, the item spanning most of the frame (the data set's
    items fill it), and nothing so thin that reducing it fades it (a thin drawing needs thickening).
    """
    if gray.shape[0] != gray.shape[1] or gray.shape[0] < size:
        return None
    reduced = reduce(gray, size)
    border = np.concatenate([reduced[0], reduced[-1], reduced[:, 0], reduced[:, -1]])
    if np.median(border) > DARK_BORDER or reduced.max() < FADED * gray.max() or reduced.max() < 8:
        return None
    rows, cols = np.nonzero(reduced > EDGE_THRESHOLD * reduced.max())
    if max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 < FRAMED * size / SIZE:
        return None
    return reduced


def prepare(gray: np.ndarray, size: int = SIZE, preparation: str = "auto") -> Prepared:
    """Turn a grayscale picture (H, W) into a light-on-dark size x size image, keeping the steps.

    `preparation` (one of PREPARATIONS): "auto" passes a Fashion-MNIST-like picture through (only
    reduced) and prepares the others fully; "full" always prepares; "resize" only reduces.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 grayscale image (H, W), got {gray.dtype} {gray.shape}.")
    if preparation not in PREPARATIONS:
        raise ValueError(f"Unknown preparation {preparation!r}; choose one of {', '.join(PREPARATIONS)}.")
    steps = [("grayscale input", gray)]
    reduced = fashion_like(gray, size) if preparation == "auto" else None
    if reduced is not None or preparation == "resize":
        return _reduced(gray, size, steps, reduced, preparation)

    # 1. Fashion-MNIST items are light on a black background: invert a light background.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:
        gray = 255 - gray
        steps.append(("light background inverted", gray))
    background = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    ink = np.clip(gray.astype(np.float32) - background, 0, None)

    # 2. Crop to the content: the box around every pixel brighter than a small fraction of the
    #    brightest. In pictures larger than the target a 3x3 median filter goes first, so isolated
    #    specks (JPEG noise, dithering) don't count; at 28 px a speck may be a sandal's strap.
    if ink.max() < 8:  # less than 8 grey levels of contrast: nothing to see
        raise ValueError("The image looks blank: nothing stands out from its background.")
    levels = Image.fromarray(_as_uint8(ink))
    if max(ink.shape) > 2 * size:
        levels = levels.filter(ImageFilter.MedianFilter(3))
    rows, cols = np.nonzero(np.asarray(levels) > EDGE_THRESHOLD * 255)
    if rows.size == 0:
        raise ValueError("The image looks blank: nothing stands out from its background.")
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    steps.append(("cropped to content", _as_uint8(ink)))

    # 3. Strokes thinner than one output pixel (a drawing) fade away when shrunk: if they do,
    #    widen them with a max filter as wide as one output pixel and shrink again.
    x = torch.from_numpy(ink)[None, None]  # (1, 1, h, w)
    shrunk = _fit(x, size)
    kernel = max(x.shape[-2:]) // size
    if kernel >= 2 and shrunk.max() < FADED * x.max():
        kernel += 1 - kernel % 2  # odd, so a stroke grows evenly on both sides
        x = F.max_pool2d(x, kernel, stride=1, padding=kernel // 2)
        steps.append(("thin strokes thickened", _as_uint8(x[0, 0].numpy())))
        shrunk = _fit(x, size)

    # 4. Stretch the contrast so the brightest pixel is white, as in the dataset.
    out = _as_uint8(shrunk[0, 0].numpy())
    steps.append((f"resized to {size}x{size}, centred", out))
    done = ", ".join(name for name, _ in steps[1:])
    summary = f"Prepared like a photo or drawing: {done}."
    return Prepared(image=out, steps=_numbered(steps), summary=summary)


def _reduced(gray: np.ndarray, size: int, steps: list, reduced: np.ndarray | None, preparation: str) -> Prepared:
    """The preparation that only reduces the picture to size x size (padded to a square first if needed)."""
    if reduced is None:  # "resize": any picture, padded with its border's colour to a square
        h, w = gray.shape
        side = max(h, w)
        fill = int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
        square = np.full((side, side), fill, np.uint8)
        square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = gray
        reduced = reduce(square, size)
    if gray.shape == (size, size):
        summary = f"Used as it is: already {size}x{size}."
    else:
        summary = f"Only reduced from {gray.shape[1]}x{gray.shape[0]} to {size}x{size}."
    if preparation == "auto":
        summary += " It already looks like Fashion-MNIST (dark background, the item filling the frame)."
    if gray.shape != (size, size):
        how = "exactly: a nearest-neighbour enlargement" if _is_enlargement(gray, reduced) else "box filter"
        steps.append((f"reduced to {size}x{size} ({how})", reduced))
    return Prepared(image=reduced, steps=_numbered(steps), summary=summary)


def _is_enlargement(gray: np.ndarray, small: np.ndarray) -> bool:
    """True when `gray` is `small` with every pixel repeated into a k x k block."""
    factor = gray.shape[0] // small.shape[0]
    return gray.shape == (small.shape[0] * factor, small.shape[1] * factor) and np.array_equal(
        np.repeat(np.repeat(small, factor, axis=0), factor, axis=1), gray
    )


def _numbered(steps: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    return [(f"{i}. {name}", image) for i, (name, image) in enumerate(steps, start=1)]


def _fit(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (1, 1, h, w) so the long side is `size` (antialiased) and centre it on a black square."""
    h, w = x.shape[-2:]
    long_side = max(h, w)
    new_h, new_w = max(1, round(h * size / long_side)), max(1, round(w * size / long_side))
    x = resize(x, (new_h, new_w))
    # An odd margin puts the extra pixel above and to the left, as Fashion-MNIST does.
    top, left = (size - new_h + 1) // 2, (size - new_w + 1) // 2
    return F.pad(x, (left, size - new_w - left, top, size - new_h - top), value=0.0)


def _as_uint8(values: np.ndarray) -> np.ndarray:
    """Scale non-negative values so the maximum is 255, as uint8."""
    top = float(values.max())
    scaled = values * (255.0 / top) if top > 0 else values
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def prepare_upload(source: str | Path | bytes | Image.Image | np.ndarray, preparation: str = "auto") -> Prepared:
    """`load_image` then `prepare`: what every tab that takes an image does first."""
    return prepare(load_image(source), preparation=preparation)


def editor_image(background: str | Path | bytes | np.ndarray, size: int = SIZE) -> np.ndarray:
    """An image editor's background (a file, bytes or an (H, W[, C]) array) as the models' (size, size)
    uint8, by area averaging, with the upload limits.

    The editor holds a picture the app put there (a model's output, enlarged), so it is only decoded
    and shrunk, not prepared like an upload.
    """
    gray = load_image(background)
    return np.array(Image.fromarray(gray).resize((size, size), Image.BOX))


def load_alpha(source: str | Path | bytes | np.ndarray) -> np.ndarray | None:
    """The alpha channel (H, W) uint8 of a layer (a file, bytes or an RGBA array), with the upload
    limits checked before decoding; None for a layer without one."""
    if isinstance(source, np.ndarray):
        return source[..., 3] if source.ndim == 3 and source.shape[2] == 4 else None
    image = _open(source)
    _check_size(image.size)
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return None
    try:
        return np.asarray(image.convert("RGBA"))[..., 3].copy()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"The painted layer is damaged and could not be decoded ({exc}).") from exc


def painted_mask(layers: list) -> np.ndarray:
    """The alpha of everything painted on an image editor's layers (files, bytes or RGBA arrays), (H, W) uint8."""
    alphas = [alpha for alpha in (load_alpha(layer) for layer in layers if layer is not None) if alpha is not None]
    if not alphas:
        raise ValueError("Paint over the part to regenerate first.")
    if len({alpha.shape for alpha in alphas}) > 1:
        raise ValueError("The painted layers differ in size; paint on one canvas.")
    return np.max(alphas, axis=0).astype(np.uint8)


def prepare_mask(source: str | Path | bytes | Image.Image | np.ndarray, size: int = SIZE) -> np.ndarray:
    """A mask, bright where to regenerate (a file or an (H, W) array), as (size, size) bool.

    It is shrunk by area averaging and thresholded at a quarter of full brightness; a ValueError says
    when it selects nothing or everything.
    """
    gray = load_image(source)
    selected = np.asarray(Image.fromarray(gray).resize((size, size), Image.BOX)) > 64
    if not selected.any():
        raise ValueError("The mask is empty: paint (or make white) the part to regenerate.")
    if selected.all():
        raise ValueError("The mask covers everything: leave some of the image to match.")
    return selected
