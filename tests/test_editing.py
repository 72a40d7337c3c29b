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


# --- the same pixels as torchvision, the reference implementation of these maps --------------------

IMAGES = {
    "float square": torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1,
    "uint8 square": torch.randint(0, 256, (1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8),
    "float wide": torch.rand(3, 17, 40, generator=torch.Generator().manual_seed(2)),
}


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("angle", [0.0, 90.0, 180.0, 270.0, -90.0, 30.0, -45.5, 123.0, 370.0])
@pytest.mark.parametrize("expand", [False, True])
def test_rotate_matches_torchvision(name, angle, expand):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    image = IMAGES[name]
    reference = TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR, expand=expand, fill=0.0)
    assert torch.equal(editing.rotate(image, angle, expand=expand), reference)
    if not expand:
        reference = TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR, fill=0.5)
        assert torch.equal(editing.rotate(image, angle, fill=0.5), reference)


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize(
    "angle, translate, scale, shear",
    [
        (0.0, (3.0, -2.0), 1.0, (0.0, 0.0)),
        (15.0, (0.5, 1.5), 1.3, (10.0, -5.0)),
        (-70.0, (-4.0, 0.0), 0.6, (0.0, 30.0)),
    ],
)
def test_affine_matches_torchvision(name, angle, translate, scale, shear):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    image = IMAGES[name]
    ours = editing.affine(image, angle=angle, translate=translate, scale=scale, shear=shear)
    reference = TF.affine(
        image, angle=angle, translate=list(translate), scale=scale, shear=list(shear),
        interpolation=InterpolationMode.BILINEAR, fill=0.0,
    )  # fmt: skip
    assert torch.equal(ours, reference)


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("size", [(28, 28), (14, 9), (56, 50), (5, 70)])
def test_resize_and_crops_match_torchvision(name, size):
    from torchvision.transforms.v2 import functional as TF

    image = IMAGES[name]
    assert torch.equal(editing.resize(image, size), TF.resize(image, list(size), antialias=True))
    for fraction in (0.3, 0.5, 0.77, 1.0):
        h, w = image.shape[-2:]
        expected = TF.center_crop(image, [max(1, round(h * fraction)), max(1, round(w * fraction))])
        assert torch.equal(editing.center_crop_fraction(image, fraction), expected)
    assert torch.equal(editing.crop(image, 1, 2, 9, 7), TF.crop(image, 1, 2, 9, 7))
    assert torch.equal(editing.hflip(image), TF.horizontal_flip(image))
    assert torch.equal(editing.vflip(image), TF.vertical_flip(image))
