"""The Fashion-MNIST loader, its search order and error, and the pixel convention."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from genmodels import data
from tests.conftest import needs_data


def write_idx(folder, split: str, n: int) -> None:
    """Write a fake split of `n` images in the original IDX format (gzipped)."""
    image_stem, label_stem = data._FILES[split]
    images = np.arange(n * 28 * 28, dtype=np.uint64).astype(np.uint8)
    header = bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (folder / f"{image_stem}.gz").write_bytes(gzip.compress(header + images.tobytes()))
    labels = (np.arange(n) % 10).astype(np.uint8)
    (folder / f"{label_stem}.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes())
    )


@needs_data
def test_real_files_load_with_the_documented_shapes():
    train = data.load_fashion_mnist("train", download=False)
    test = data.load_fashion_mnist("test", download=False)
    assert train.images.shape == (60_000, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 28, 28)
    assert train.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))
    assert train.images.float().mean() > 50  # real pictures, not zeros


def test_data_dir_comes_first_then_the_environment(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr(data, "_SIZES", {"train": 6, "test": 4})
    write_idx(first, "test", 4)
    write_idx(second, "test", 4)
    monkeypatch.setenv(data.ENV_VAR, str(second))
    assert data.load_fashion_mnist("test", data_dir=first, download=False).source == str(first)
    assert data.load_fashion_mnist("test", download=False).source == str(second)


def test_missing_everywhere_names_all_three_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist("train", data_dir=tmp_path / "nothing", download=False)
    message = str(info.value)
    assert "--data-dir" in message and "FASHION_MNIST_DIR" in message and "dataset-fashion-mnist" in message


def test_truncated_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_SIZES", {"train": 6, "test": 4})
    write_idx(tmp_path, "test", 4)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    with pytest.raises(ValueError, match="truncated"):
        data.load_fashion_mnist("test", data_dir=tmp_path, download=False)


def test_pixel_convention_round_trips():
    images = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    x = data.to_tensor(images)
    assert x.shape == (1, 1, 16, 16) and x.min() == -1 and x.max() == 1
    assert torch.equal(data.to_uint8(x), images)
    with pytest.raises(ValueError):
        data.to_tensor(torch.zeros(2, 2, dtype=torch.float32))
    with pytest.raises(ValueError):
        data.to_uint8(torch.zeros(2, 28, 28))


def test_class_names_and_lookup():
    assert len(data.CLASS_NAMES) == 10
    assert data.class_index("sneaker") == 7 == data.class_index(7) == data.class_index("7")
    with pytest.raises(ValueError):
        data.class_index("hat")
    with pytest.raises(ValueError):
        data.class_index(10)


def test_batches_cover_everything_once_and_are_reproducible():
    a = data.batches(10, 4, torch.Generator().manual_seed(0), drop_last=False)
    b = data.batches(10, 4, torch.Generator().manual_seed(0), drop_last=False)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert sorted(torch.cat(a).tolist()) == list(range(10))
    assert [len(x) for x in data.batches(10, 4, torch.Generator().manual_seed(0))] == [4, 4]
