"""Classic image edits from the tutorial (crop, rotate, flip, affine) as pure functions.

Each takes an image tensor of shape (..., C, H, W), uint8 or float, and returns a new tensor of the
same dtype; the resampling is torchvision's (`transforms.v2.functional`). Areas uncovered by a
rotation or an affine map are filled with `fill` (0 = the black Fashion-MNIST background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

MAX_SCALE = 10.0  # beyond this a 28x28 image is a handful of blown-up pixels
MAX_SHEAR = 80.0  # degrees; shear(90) is singular


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim < 3:
        raise ValueError("Expected an image tensor of shape (..., C, H, W).")
    if image.shape[-1] < 1 or image.shape[-2] < 1:
        raise ValueError(f"Image has no pixels: shape {tuple(image.shape)}.")


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}.")


def crop(image: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """Cut out the box whose top-left corner is (top, left); the box must lie inside the image."""
    _check_image(image)
    h, w = image.shape[-2:]
    if height < 1 or width < 1:
        raise ValueError(f"Crop size must be positive, got {height}x{width}.")
    if top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f"Crop box (top={top}, left={left}, {height}x{width}) does not fit in a {h}x{w} image.")
    return F.crop(image, top, left, height, width)


def center_crop_fraction(image: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keep the central `fraction` (0 < fraction <= 1) of each side."""
    _check_image(image)
    _check_finite(fraction=fraction)
    if not 0 < fraction <= 1:
        raise ValueError(f"Crop fraction must be in (0, 1], got {fraction}.")
    h, w = image.shape[-2:]
    return F.center_crop(image, [max(1, round(h * fraction)), max(1, round(w * fraction))])


def rotate(image: torch.Tensor, angle: float, expand: bool = False, fill: float = 0.0) -> torch.Tensor:
    """Rotate counter-clockwise by `angle` degrees about the centre (bilinear)."""
    _check_image(image)
    _check_finite(angle=angle)
    return F.rotate(image, angle, interpolation=InterpolationMode.BILINEAR, expand=expand, fill=fill)


def hflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror left-right."""
    _check_image(image)
    return F.horizontal_flip(image)


def vflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom."""
    _check_image(image)
    return F.vertical_flip(image)


def affine(
    image: torch.Tensor,
    angle: float = 0.0,
    translate: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    shear: tuple[float, float] = (0.0, 0.0),
    fill: float = 0.0,
) -> torch.Tensor:
    """Affine map about the centre: rotate `angle` degrees, translate (dx, dy) pixels, scale, shear (x, y) degrees."""
    _check_image(image)
    _check_finite(angle=angle, scale=scale, dx=translate[0], dy=translate[1], shear_x=shear[0], shear_y=shear[1])
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"Scale must be in (0, {MAX_SCALE}], got {scale}.")
    if max(abs(shear[0]), abs(shear[1])) > MAX_SHEAR:
        raise ValueError(f"Shear must be within +-{MAX_SHEAR} degrees, got {shear}.")
    h, w = image.shape[-2:]
    if abs(translate[0]) > w or abs(translate[1]) > h:
        raise ValueError(f"Translation {translate} moves the image entirely out of its {h}x{w} frame.")
    return F.affine(
        image,
        angle=angle,
        translate=[float(translate[0]), float(translate[1])],
        scale=scale,
        shear=[float(shear[0]), float(shear[1])],
        interpolation=InterpolationMode.BILINEAR,
        fill=fill,
    )


@dataclass(frozen=True)
class EditParams:
    """One set of classic edits, applied in this order: crop, flips, rotation, affine."""

    crop: float = 1.0  # central fraction kept, (0, 1]
    angle: float = 0.0  # rotation in degrees, counter-clockwise
    flip_h: bool = False
    flip_v: bool = False
    scale: float = 1.0
    translate_x: float = 0.0  # pixels
    translate_y: float = 0.0  # pixels
    shear_x: float = 0.0  # degrees
    shear_y: float = 0.0  # degrees


def apply_edits(image: torch.Tensor, params: EditParams) -> torch.Tensor:
    """Apply `params` to an image (..., C, H, W) and return it at its original size."""
    _check_image(image)
    size = list(image.shape[-2:])
    out = image
    if params.crop != 1.0:
        out = F.resize(center_crop_fraction(out, params.crop), size, antialias=True)
    if params.flip_h:
        out = hflip(out)
    if params.flip_v:
        out = vflip(out)
    if params.angle != 0.0:
        out = rotate(out, params.angle)
    affine_params = (params.scale, params.translate_x, params.translate_y, params.shear_x, params.shear_y)
    if affine_params != (1.0, 0.0, 0.0, 0.0, 0.0):
        out = affine(
            out,
            translate=(params.translate_x, params.translate_y),
            scale=params.scale,
            shear=(params.shear_x, params.shear_y),
        )
    return out
