"""Turning model tensors into things people look at: grids, PNG and NumPy files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data import to_uint8
from .hub import write_atomic

OUTPUT_SUFFIXES = (".png", ".npy")


def grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile tensors (N, 1, H, W) in [-1, 1] into one uint8 image (H', W'); nrow defaults to ceil(sqrt(N)).

    torchvision's `make_grid` layout (the tests compare with it), without importing torchvision (see editing.py)."""
    images = to_uint8(x).numpy()  # (N, H, W)
    count, height, width = images.shape
    if count == 1:  # one image is shown as it is, without a frame
        return images[0]
    columns = min(nrow or math.ceil(math.sqrt(count)), count)
    rows = math.ceil(count / columns)
    tiled = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding), np.uint8)
    for i, image in enumerate(images):  # `padding` black pixels around and between the tiles
        top, left = padding + (i // columns) * (height + padding), padding + (i % columns) * (width + padding)
        tiled[top : top + height, left : left + width] = image
    return tiled


def row(frames: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """uint8 images of equal height side by side, `gap` black pixels between them (no outer border)."""
    spacer = np.zeros((frames[0].shape[0], gap), dtype=np.uint8)
    parts = []
    for frame in frames:
        parts += [frame, spacer]
    return np.concatenate(parts[:-1], axis=1)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) image as PNG bytes (deterministic: no timestamps or metadata)."""
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def save_images(x: torch.Tensor, path: str | Path) -> Path:
    """Save tensors (N, 1, H, W) in [-1, 1]: `.png` as a grid, `.npy` as uint8 (N, H, W). Atomic."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        data = png_bytes(grid(x))
    elif path.suffix.lower() == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, to_uint8(x).numpy(), allow_pickle=False)
        data = buffer.getvalue()
    else:
        raise ValueError(f"Output {path} must end in {' or '.join(OUTPUT_SUFFIXES)}.")
    write_atomic(path, data)
    return path


def upscale(image: np.ndarray, factor: int = 8) -> np.ndarray:
    """Nearest-neighbour enlargement, so 28x28 pixels stay crisp squares on screen."""
    if factor < 1:
        raise ValueError(f"Upscale factor must be at least 1, got {factor}.")
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def fit_for_display(image: np.ndarray, size: int = 224) -> np.ndarray:
    """A uint8 image for a ~`size` px tile: large ones shrunk smoothly, small ones as they are (the page
    enlarges them without smoothing, so a 28x28 step costs 784 pixels to send, not 50,000)."""
    if max(image.shape[:2]) <= size:
        return image
    shrunk = Image.fromarray(image)
    shrunk.thumbnail((size, size), Image.Resampling.LANCZOS)
    return np.asarray(shrunk)


def heatmap(error: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """Map values in [0, vmax] (H, W) to an RGB "hot" colour map (black, red, yellow, white), uint8 (H, W, 3)."""
    t = np.clip(np.nan_to_num(error / vmax), 0.0, 1.0)
    red = np.clip(3.0 * t, 0, 1)
    green = np.clip(3.0 * t - 1.0, 0, 1)
    blue = np.clip(3.0 * t - 2.0, 0, 1)
    return (np.stack([red, green, blue], axis=-1) * 255).round().astype(np.uint8)


GRAY_PALETTE = [level for gray in range(256) for level in (gray, gray, gray)]


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 120, boomerang: bool = True) -> bytes:
    """An endlessly looping animated GIF of uint8 (H, W) frames; boomerang plays them back and forth."""
    if not frames:
        raise ValueError("A GIF needs at least one frame.")
    sequence = list(frames) + (list(frames[-2:0:-1]) if boomerang else [])
    # Palette images whose index is the gray level: PIL writes them as they are, where from mode L it
    # would convert every frame first (a third of the time for the app's 224x224 frames).
    images = []
    for frame in sequence:
        image = Image.frombytes("P", frame.shape[::-1], np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        image.putpalette(GRAY_PALETTE)
        images.append(image)
    buffer = io.BytesIO()
    # optimize=False: no per-frame transparency masks (ImageMath over every pixel); the same frames, 3x faster.
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False
    )
    return buffer.getvalue()


# Ten well-separated colours (Tableau 10), one per Fashion-MNIST class, for the latent map.
CLASS_COLOURS = np.array(
    [
        (78, 121, 167),
        (242, 142, 43),
        (225, 87, 89),
        (118, 183, 178),
        (89, 161, 79),
        (237, 201, 72),
        (176, 122, 161),
        (255, 157, 167),
        (156, 117, 95),
        (186, 176, 172),
    ],
    dtype=np.uint8,
)


def scatter(points: np.ndarray, labels: np.ndarray, size: int = 560, margin: float = 0.05):
    """Draw 2-D points (N, 2), coloured by class, on a dark square; return (RGB uint8 image, bounds).

    `bounds` = (x_min, x_max, y_min, y_max) of the drawn area, so a pixel maps back to map coordinates
    with `pixel_to_point`. The y axis points up, as on a plot.
    """
    low, high = points.min(0), points.max(0)
    pad = (high - low) * margin
    bounds = (float(low[0] - pad[0]), float(high[0] + pad[0]), float(low[1] - pad[1]), float(high[1] + pad[1]))
    canvas = np.full((size, size, 3), 24, dtype=np.uint8)
    cols = ((points[:, 0] - bounds[0]) / (bounds[1] - bounds[0]) * (size - 1)).round().astype(int)
    rows = ((bounds[3] - points[:, 1]) / (bounds[3] - bounds[2]) * (size - 1)).round().astype(int)
    for dy in (-1, 0, 1):  # 3x3 dots
        for dx in (-1, 0, 1):
            r, c = np.clip(rows + dy, 0, size - 1), np.clip(cols + dx, 0, size - 1)
            canvas[r, c] = CLASS_COLOURS[labels]
    return canvas, bounds


def pixel_to_point(col: float, row: float, bounds: tuple[float, float, float, float], size: int = 560):
    """The map coordinates (x, y) under pixel (col, row) of a `scatter` image."""
    x = bounds[0] + col / (size - 1) * (bounds[1] - bounds[0])
    y = bounds[3] - row / (size - 1) * (bounds[3] - bounds[2])
    return x, y
