"""Classic image edits from the tutorial (crop, rotate, flip, affine) as pure functions.

Each takes an image tensor of shape (..., C, H, W), uint8 or float, and returns a new tensor of the
same dtype. Areas uncovered by a rotation or an affine map are filled with `fill` (0 = the black
Fashion-MNIST background).

How a rotation or an affine map is drawn: for every output pixel, the inverse map gives the point of
the input it comes from, and bilinear interpolation (`torch.nn.functional.grid_sample`) reads the
input there. The maps and their conventions are torchvision's (`transforms.v2.functional`), and the
tests check these functions against it pixel for pixel; they are written out here because importing
torchvision loads torch's compiler stack (its `ops` import `torch._dynamo`, which loads Triton):
156 MB, a quarter of the web server's memory, for five small functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

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
    return image[..., top : top + height, left : left + width]


def center_crop_fraction(image: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keep the central `fraction` (0 < fraction <= 1) of each side."""
    _check_image(image)
    _check_finite(fraction=fraction)
    if not 0 < fraction <= 1:
        raise ValueError(f"Crop fraction must be in (0, 1], got {fraction}.")
    h, w = image.shape[-2:]
    height, width = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return image[..., top : top + height, left : left + width]


def resize(image: torch.Tensor, size: tuple[int, int] | list[int]) -> torch.Tensor:
    """Resize to `size` (height, width): bilinear, antialiased when shrinking (so no aliasing)."""
    _check_image(image)
    height, width = size
    if (height, width) == tuple(image.shape[-2:]):
        return image
    flat = image.reshape(-1, *image.shape[-3:])
    native = image.is_floating_point() or (image.dtype == torch.uint8 and image.device.type == "cpu")
    resized = F.interpolate(
        flat if native else flat.float(), size=[height, width], mode="bilinear", align_corners=False, antialias=True
    )
    if not native:
        resized = resized.round_().to(image.dtype)
    return resized.reshape(*image.shape[:-2], height, width)


def _inverse_affine_matrix(
    angle: float, translate: tuple[float, float], scale: float, shear: tuple[float, float]
) -> list[float]:
    """The 2x3 inverse of the map "rotate `angle` degrees, scale, shear (x, y) degrees about the centre,
    then translate", in pixel coordinates whose origin is the image centre (output point -> input point).

    The map is M = T R S Sh with R S Sh = [[a, b], [c, d]] times `scale`; det([[a, b], [c, d]]) = 1.
    """
    rotation, shear_x, shear_y = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    a = math.cos(rotation - shear_y) / math.cos(shear_y)
    b = -(a * math.tan(shear_x) + math.sin(rotation))
    c = math.sin(rotation - shear_y) / math.cos(shear_y)
    d = math.cos(rotation) - c * math.tan(shear_x)
    matrix = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    matrix[2] = -matrix[0] * translate[0] - matrix[1] * translate[1]
    matrix[5] = -matrix[3] * translate[0] - matrix[4] * translate[1]
    return matrix


def _bounding_size(matrix: list[float], width: int, height: int) -> tuple[int, int]:
    """Width and height of the box that holds the whole image after the map whose inverse is `matrix`."""
    half = torch.tensor((0.5 * width, 0.5 * height))
    corners = torch.tensor([[-1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 1.0]])
    corners[:, :2] *= half
    moved = corners @ torch.tensor(matrix, dtype=torch.float).view(2, 3).T
    low, high = moved.aminmax(dim=0)
    # Truncated to 1e-4 first, so that 27.999999 does not become 29 pixels.
    high = (high + half).mul_(1e4).trunc_().mul_(1e-4).ceil_()
    low = (low + half).mul_(1e4).trunc_().mul_(1e-4).floor_()
    size = high - low
    return int(size[0]), int(size[1])


def _warp(image: torch.Tensor, matrix: list[float], height: int, width: int, fill: float) -> torch.Tensor:
    """An output of `height` x `width` whose pixels are read bilinearly from `image` where the inverse
    map `matrix` sends them; pixels from outside the image are `fill` (blended along the border)."""
    *batch, channels, in_height, in_width = image.shape
    dtype = image.dtype if image.is_floating_point() else torch.float32
    device = image.device
    flat = image.reshape(-1, channels, in_height, in_width).to(dtype)
    # Output pixel centres relative to the output's centre, mapped, then in grid_sample's [-1, 1] units.
    points = torch.empty(1, height, width, 3, dtype=dtype, device=device)
    points[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device))
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    points[..., 1].copy_(ys.unsqueeze(-1))
    points[..., 2].fill_(1)
    theta = torch.tensor(matrix, dtype=dtype, device=device).reshape(1, 2, 3)
    theta = theta.transpose(1, 2).div(torch.tensor([0.5 * in_width, 0.5 * in_height], dtype=dtype, device=device))
    grid = points.view(1, height * width, 3).bmm(theta).view(1, height, width, 2).expand(len(flat), -1, -1, -1)
    # A channel of ones, sampled alongside, says how much of each output pixel lies inside the input.
    inside = torch.ones(len(flat), 1, in_height, in_width, dtype=dtype, device=device)
    sampled = F.grid_sample(torch.cat((flat, inside), dim=1), grid, mode="bilinear", align_corners=False)
    pixels, coverage = sampled[:, :-1], sampled[:, -1:].expand(-1, channels, -1, -1)
    filled = pixels.sub_(fill).mul_(coverage).add_(fill)
    if not image.is_floating_point():
        filled = filled.round_().to(image.dtype)
    return filled.reshape(*batch, channels, height, width)


def rotate(image: torch.Tensor, angle: float, expand: bool = False, fill: float = 0.0) -> torch.Tensor:
    """Rotate counter-clockwise by `angle` degrees about the centre (bilinear)."""
    _check_image(image)
    _check_finite(angle=angle)
    angle = angle % 360
    height, width = image.shape[-2:]
    if angle == 0:
        return image.clone()
    if angle == 180 or (angle in (90, 270) and (expand or height == width)):  # exact quarter turns
        return torch.rot90(image, k=round(angle / 90), dims=(-2, -1))
    matrix = _inverse_affine_matrix(-angle, (0.0, 0.0), 1.0, (0.0, 0.0))
    out_width, out_height = _bounding_size(matrix, width, height) if expand else (width, height)
    return _warp(image, matrix, out_height, out_width, fill)


def hflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror left-right."""
    _check_image(image)
    return image.flip(-1)


def vflip(image: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom."""
    _check_image(image)
    return image.flip(-2)


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
    matrix = _inverse_affine_matrix(float(angle), (float(translate[0]), float(translate[1])), scale, shear)
    return _warp(image, matrix, h, w, fill)


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
        out = resize(center_crop_fraction(out, params.crop), size)
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
