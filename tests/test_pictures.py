"""Your own pictures as training data: preparation, counts, and zips with tricks."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from genmodels import pictures
from genmodels.pictures import MIN_PICTURES, load_pictures, safe_zip_entries


def png(value: int, size: tuple[int, int] = (40, 30), mode: str = "L") -> bytes:
    """A picture: a bright rectangle on a dark background, as PNG bytes."""
    array = np.zeros((size[1], size[0]), np.uint8)
    array[5:-5, 8:-8] = value
    image = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(path)


def test_files_of_any_mode_are_prepared_and_the_rest_counted(tmp_path):
    modes = ["L", "RGB", "RGBA", "P", "LA", "1"]
    for i in range(MIN_PICTURES):
        (tmp_path / f"{i:02d}.png").write_bytes(png(100 + i * 5, mode=modes[i % len(modes)]))
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "broken.png").write_bytes(png(200)[:60])  # truncated
    found = load_pictures(tmp_path)
    assert found.images.shape == (MIN_PICTURES, 28, 28) and found.images.dtype == np.uint8
    assert len(found.skipped) == 2 and {line.split(":")[0] for line in found.skipped} == {"notes.txt", "broken.png"}
    assert "16 pictures; 2 file(s) skipped" in found.summary()
    # What the model sees is exactly what the Round trip tab makes of each file.
    from genmodels.preprocess import prepare_upload

    assert np.array_equal(found.images[0], prepare_upload(str(tmp_path / "00.png")).image)


def test_too_few_pictures_say_how_many_are_needed(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png(200))
    with pytest.raises(ValueError, match=f"Only 3 usable.*at least {MIN_PICTURES}"):
        load_pictures(tmp_path)


def test_more_than_the_cap_are_left_out_with_a_count(tmp_path, monkeypatch):
    monkeypatch.setattr(pictures, "MAX_PICTURES", 20)
    archive = write_zip(tmp_path / "many.zip", {f"{i:03d}.png": png(50 + i) for i in range(25)})
    found = load_pictures(archive)
    assert len(found.images) == 20 and found.capped == 5
    assert "5 left out over the limit" in found.summary()


@pytest.mark.parametrize("name", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png", "..\\evil.png"])
def test_a_zip_slip_entry_refuses_the_zip(tmp_path, name):
    entries = {f"{i}.png": png(120) for i in range(MIN_PICTURES)}
    entries[name] = png(120)
    archive = write_zip(tmp_path / "slip.zip", entries)
    with pytest.raises(ValueError, match="unsafe path"):
        load_pictures(archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slip.zip"]  # nothing extracted anywhere


def test_a_zip_bomb_is_refused_before_anything_is_read(tmp_path):
    bomb = write_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(50 * 2**20)})  # 50 MB of zeros: ~50 KB
    with zipfile.ZipFile(bomb) as archive, pytest.raises(ValueError, match="zip bomb"):
        safe_zip_entries(archive)
    with pytest.raises(ValueError, match="zip bomb"):
        load_pictures(bomb)


def test_a_zip_declaring_too_much_in_all_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pictures, "MAX_ZIP_BYTES", 1_000)
    archive = write_zip(tmp_path / "big.zip", {f"{i}.png": png(90, size=(200, 200)) for i in range(MIN_PICTURES)})
    with pytest.raises(ValueError, match="would expand"):
        load_pictures(archive)


def test_empty_zips_and_non_zips_get_a_sentence(tmp_path):
    empty = write_zip(tmp_path / "empty.zip", {})
    with pytest.raises(ValueError, match="No files were given"):
        load_pictures(empty)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        load_pictures(fake)
