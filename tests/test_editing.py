"""Classic edits: each does what it says on a known image, and rejects nonsense parameters."""

from __future__ import annotations

import pytest
import torch

from genmodels import editing


def arrow() -> torch.Tensor:
    """A (1, 28, 28) uint8 image with a single bright block in the top-left quadrant."""
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 2:8, 3:10] = 255
    return image


def test_crop_takes_the_box():
    out = editing.crop(arrow(), 2, 3, 6, 7)
    assert out.shape == (1, 6, 7) and (out == 255).all()


@pytest.mark.parametrize("box", [(0, 0, 0, 5), (-1, 0, 5, 5), (20, 20, 10, 10)])
def test_crop_outside_is_rejected(box):
    with pytest.raises(ValueError):
        editing.crop(arrow(), *box)


def test_center_crop_fraction():
    assert editing.center_crop_fraction(arrow(), 0.5).shape == (1, 14, 14)
    with pytest.raises(ValueError):
        editing.center_crop_fraction(arrow(), 0.0)


def test_flips_mirror_and_are_involutions():
    image = arrow()
    assert torch.equal(editing.hflip(image)[0, 2:8, 18:25], image[0, 2:8, 3:10])
    assert torch.equal(editing.vflip(image)[0, 20:26, 3:10], image[0, 2:8, 3:10])
    assert torch.equal(editing.hflip(editing.hflip(image)), image)
    assert torch.equal(editing.vflip(editing.vflip(image)), image)


def test_rotate_by_90_moves_the_block_to_the_bottom_left():
    out = editing.rotate(arrow(), 90.0)  # counter-clockwise
    assert out.dtype == torch.uint8
    assert out[0, 14:, :14].float().sum() > 0.9 * arrow().float().sum()
    assert torch.equal(editing.rotate(arrow(), 0.0), arrow())
    assert editing.rotate(arrow(), 45.0, expand=True).shape[-1] > 28


def test_affine_translate_scale_shear():
    moved = editing.affine(arrow(), translate=(10, 5))
    assert torch.equal(moved[0, 7:13, 13:20], arrow()[0, 2:8, 3:10])
    assert torch.equal(editing.affine(arrow()), arrow())
    assert editing.affine(arrow(), scale=0.5).float().sum() < 0.5 * arrow().float().sum()
    sheared = editing.affine(arrow(), shear=(30.0, 0.0))
    assert not torch.equal(sheared, arrow())


def test_edits_keep_batch_and_float_images():
    batch = torch.rand(4, 1, 28, 28) * 2 - 1
    for out in (editing.hflip(batch), editing.rotate(batch, 30), editing.affine(batch, angle=10, scale=1.2)):
        assert out.shape == batch.shape and out.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0.0},
        {"scale": -1.0},
        {"scale": float("nan")},
        {"angle": float("inf")},
        {"shear": (89.0, 0.0)},
        {"translate": (1000.0, 0.0)},
    ],
)
def test_affine_rejects_absurd_parameters(kwargs):
    with pytest.raises(ValueError):
        editing.affine(arrow(), **kwargs)


def test_non_images_are_rejected():
    with pytest.raises(ValueError):
        editing.hflip(torch.zeros(28, 28))
    with pytest.raises(ValueError):
        editing.rotate(arrow(), float("nan"))
