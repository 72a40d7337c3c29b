"""Grids, PNG/NPY output, upscaling, heat maps and GIFs."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.data import to_uint8
from genmodels.images import (
    fit_for_display,
    gif_bytes,
    grid,
    heatmap,
    png_bytes,
    row,
    save_images,
    upscale,
)


def test_grid_tiles_with_padding():
    x = torch.full((6, 1, 28, 28), 1.0)
    tiles = grid(x)
    assert tiles.shape == (2 * 30 + 2, 3 * 30 + 2) and tiles.dtype == np.uint8
    assert tiles[2:30, 2:30].min() == 255 and tiles[0].max() == 0


@pytest.mark.parametrize("count, nrow, padding", [(1, None, 2), (6, None, 2), (16, None, 2), (7, 3, 1), (5, 8, 0)])
def test_grid_matches_torchvision_make_grid(count, nrow, padding):
    from torchvision.utils import make_grid

    x = torch.rand(count, 1, 12, 9, generator=torch.Generator().manual_seed(count)) * 2 - 1
    reference = make_grid(to_uint8(x).unsqueeze(1), nrow=nrow or math.ceil(math.sqrt(count)), padding=padding)
    assert np.array_equal(grid(x, nrow, padding), reference[0].numpy())


def test_png_is_deterministic_and_lossless():
    image = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)
    data = png_bytes(image)
    assert data == png_bytes(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), image)


def test_save_images_png_and_npy(tmp_path):
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    save_images(x, tmp_path / "a.npy")
    assert np.array_equal(np.load(tmp_path / "a.npy"), to_uint8(x).numpy()), "the images, as uint8 (3, 28, 28)"
    save_images(x, tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), grid(x)), "the grid, 62 x 62"
    with pytest.raises(ValueError):
        save_images(x, tmp_path / "a.jpg")


def test_upscale_and_heatmap():
    small = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(upscale(small, 4), np.kron(small, np.ones((4, 4), np.uint8))), "each pixel a 4 x 4 block"
    colours = heatmap(np.array([[0.0, 0.5, 1.0, np.nan]]))
    assert colours.shape == (1, 4, 3)
    assert colours[0, 0].tolist() == [0, 0, 0] and colours[0, 2].tolist() == [255, 255, 255]
    assert colours[0, 1, 0] == 255 and colours[0, 1, 2] == 0  # red-yellow in the middle


def test_gif_frames_keep_every_gray_level():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    frames = [levels, np.ascontiguousarray(levels[::-1]), np.ascontiguousarray(levels.T)]
    gif = Image.open(io.BytesIO(gif_bytes(frames, boomerang=False)))
    for index, frame in enumerate(frames):
        gif.seek(index)
        assert np.array_equal(np.asarray(gif.convert("RGB"))[..., 0], frame)


def test_gif_loops_back_and_forth():
    frames = [np.full((8, 8), v, np.uint8) for v in (0, 100, 200)]
    gif = Image.open(io.BytesIO(gif_bytes(frames)))
    assert gif.n_frames == 4 and gif.info["loop"] == 0
    with pytest.raises(ValueError):
        gif_bytes([])


def test_fit_for_display_keeps_small_and_shrinks_large_images():
    assert fit_for_display(np.zeros((28, 28), np.uint8)).shape == (28, 28)
    assert fit_for_display(np.zeros((1000, 500), np.uint8)).shape == (224, 112)


def test_row_puts_frames_side_by_side_with_gaps():
    frames = [np.full((28, 28), 255, np.uint8)] * 3
    strip = row(frames)
    assert strip.shape == (28, 3 * 28 + 2 * 2)
    assert strip[:, 28:30].max() == 0 and strip[:, :28].min() == 255
