"""Uploads: every format and mode decodes; bad files get a plain ValueError; preparation steps."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from genmodels.data import EXAMPLES_DIR, load_fashion_mnist
from genmodels.preprocess import MAX_PIXELS, load_image, prepare, prepare_upload
from tests.conftest import needs_data


def shirt(mode: str = "RGB", size: int = 96) -> Image.Image:
    """A dark T-shape on a light background, as a product photo would be, in `mode`."""
    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle([size * 0.3, size * 0.2, size * 0.7, size * 0.9], fill=(30, 40, 120))
    draw.rectangle([size * 0.1, size * 0.2, size * 0.9, size * 0.4], fill=(30, 40, 120))
    if mode == "I;16":
        return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257).convert("I;16")
    if mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        alpha = Image.fromarray(np.where(np.asarray(image.convert("L")) > 200, 0, 255).astype(np.uint8))
        rgba.putalpha(alpha)  # transparent background around the item
        return rgba if mode == "RGBA" else rgba.convert(mode)
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)  # as GIF encoders do
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


CASES = {
    "png-L": lambda: encode(shirt("L"), "PNG"),
    "png-1": lambda: encode(shirt("1").convert("L").point(lambda v: v).convert("1", dither=Image.Dither.NONE), "PNG"),
    "png-P": lambda: encode(shirt("P"), "PNG"),
    "png-RGB": lambda: encode(shirt("RGB"), "PNG"),
    "png-RGBA": lambda: encode(shirt("RGBA"), "PNG"),
    "png-LA": lambda: encode(shirt("LA"), "PNG"),
    "png-I16": lambda: encode(shirt("I;16"), "PNG"),
    "jpeg": lambda: encode(shirt("RGB"), "JPEG", quality=90),
    "jpeg-progressive": lambda: encode(shirt("RGB"), "JPEG", progressive=True),
    "jpeg-cmyk": lambda: encode(shirt("CMYK"), "JPEG"),
    "webp": lambda: encode(shirt("RGB"), "WEBP"),
    "webp-rgba": lambda: encode(shirt("RGBA"), "WEBP"),
    "bmp": lambda: encode(shirt("RGB"), "BMP"),
    "tiff": lambda: encode(shirt("RGB"), "TIFF"),
    "tiff-cmyk": lambda: encode(shirt("CMYK"), "TIFF"),
    "gif-animated": lambda: encode(shirt("RGB"), "GIF", save_all=True, append_images=[Image.new("RGB", (96, 96))]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_format_and_mode_gives_the_same_item(case):
    prepared = prepare_upload(CASES[case]())
    assert prepared.image.shape == (28, 28) and prepared.image.dtype == np.uint8
    # Light-on-dark like Fashion-MNIST: the background (corners) dark, the item bright.
    assert prepared.image[0, 0] < 30 and prepared.image[27, 27] < 30
    assert prepared.image[14, 14] > 150
    reference = prepare_upload(CASES["png-RGB"]()).image.astype(int)
    assert np.abs(prepared.image.astype(int) - reference).mean() < 25


def test_exif_orientation_is_honoured():
    tall = shirt("RGB").transpose(Image.Transpose.ROTATE_90)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    upright = load_image(encode(tall, "JPEG", exif=exif.tobytes()))
    plain = load_image(encode(shirt("RGB"), "JPEG"))
    assert np.abs(upright.astype(int) - plain.astype(int)).mean() < 10


def test_arrays_of_any_dtype_are_accepted():
    gray = np.asarray(shirt("L"))
    as_float = gray.astype(np.float32) / 255.0
    assert np.abs(load_image(as_float).astype(int) - gray.astype(int)).max() <= 1
    assert load_image(np.stack([gray] * 3, axis=-1)).shape == gray.shape


BAD = {
    "not an image": (b"hello, this is text" * 10, "not an image"),
    "empty": (b"", "empty"),
    "truncated png": (encode(shirt("RGB", 256), "PNG")[:600], "damaged or truncated"),
    "tiny": (encode(Image.new("L", (3, 3)), "PNG"), "at least"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_get_a_plain_message(name):
    data, words = BAD[name]
    with pytest.raises(ValueError, match=words):
        load_image(data)


def test_huge_images_are_refused_before_decoding():
    # A PNG header claiming 20000 x 20000 pixels with almost no data: a decompression bomb.
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ValueError, match=f"{MAX_PIXELS:,}|not an image"):
        load_image(bomb)


def test_blank_images_are_refused():
    with pytest.raises(ValueError, match="blank"):
        prepare_upload(encode(Image.new("L", (64, 64), 200), "PNG"))


def test_a_thin_drawing_is_thickened_and_centred():
    # A bag outline drawn with a 6 px pen on an 800 px canvas: 0.2 output pixels wide if just shrunk.
    canvas = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).rectangle([200, 300, 600, 700], outline=(0, 0, 0, 255), width=6)
    ImageDraw.Draw(canvas).arc([300, 150, 500, 450], 180, 360, fill=(0, 0, 0, 255), width=6)
    prepared = prepare_upload(np.asarray(canvas))
    names = [name for name, _ in prepared.steps]
    assert any("thickened" in name for name in names) and any("inverted" in name for name in names)
    image = prepared.image.astype(int)
    assert image[0].max() > 200 and image[-1].max() > 200, "the long side spans the frame, bright"
    assert np.abs(image - image[:, ::-1]).mean() < 10, "centred left to right"
    assert image[20, 14] < 30, "the inside of the outline stays dark"


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2) / 255**2
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def nearest(image: np.ndarray, factor: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((28 * factor, 28 * factor), Image.NEAREST))


def bicubic(image: np.ndarray, factor: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((28 * factor, 28 * factor), Image.BICUBIC))


EXAMPLES = sorted(EXAMPLES_DIR.glob("*.png"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_fashion_mnist_uploads_reach_the_model_unchanged(path):
    """A test image uploaded as it is, or enlarged by whole factors, comes out pixel for pixel."""
    original = np.asarray(Image.open(path))
    for upload in (original, nearest(original, 2), nearest(original, 4), nearest(original, 7)):
        prepared = prepare_upload(encode(Image.fromarray(upload), "PNG"))
        assert np.array_equal(prepared.image, original), f"{upload.shape} changed"
        assert "looks like Fashion-MNIST" in prepared.summary
    # A smooth enlargement comes back as close as a box filter gets: PIL's BOX reduction of it.
    smooth = bicubic(original, 4)
    prepared = prepare_upload(encode(Image.fromarray(smooth), "PNG")).image
    box = np.asarray(Image.fromarray(smooth).resize((28, 28), Image.BOX)).astype(int)
    assert np.abs(prepared.astype(int) - box).max() <= 1 and psnr_db(prepared, original) > 25


@needs_data
def test_held_out_images_pass_through_at_every_size():
    test = load_fashion_mnist("test", download=False)
    for index in range(0, 10_000, 97):  # 104 images spread over the test set
        image = test.images[index].numpy()
        assert np.array_equal(prepare(image).image, image)
        assert np.array_equal(prepare(nearest(image, 4)).image, image)
        assert psnr_db(prepare(bicubic(image, 4)).image, image) > 24


def test_other_pictures_still_get_the_steps_that_help_them():
    small = np.zeros((112, 112), np.uint8)
    small[40:72, 44:68] = 220  # an item in the middle of a dark photo, far from filling the frame
    prepared = prepare(small)
    assert any("cropped" in name for name, _ in prepared.steps) and "Prepared like a photo" in prepared.summary
    assert prepared.image[0].max() > 200, "cropped: the item now spans the frame"
    light = 255 - nearest(np.asarray(Image.open(EXAMPLES[0])), 4)  # a test image on white paper
    assert any("inverted" in name for name, _ in prepare(light).steps)
    # Asked for: the full steps for a Fashion-MNIST-like picture, or only the reduction for any picture.
    assert (
        "Prepared like a photo" in prepare(nearest(np.asarray(Image.open(EXAMPLES[0])), 4), preparation="full").summary
    )
    only = prepare(small, preparation="resize")
    assert np.array_equal(only.image, small[::4, ::4]) and only.summary.startswith("Only reduced from 112x112")
    with pytest.raises(ValueError, match="preparation"):
        prepare(small, preparation="sharpen")


def test_prepare_mask_shrinks_and_refuses_empty_or_full_masks():
    from genmodels.preprocess import prepare_mask

    painted = np.zeros((280, 280), np.uint8)
    painted[:, 140:] = 255
    mask = prepare_mask(painted)
    assert mask.shape == (28, 28) and mask[:, 14:].all() and not mask[:, :14].any()
    for bad in (np.zeros((280, 280), np.uint8), np.full((280, 280), 255, np.uint8)):
        with pytest.raises(ValueError, match="mask"):
            prepare_mask(bad)
