"""Fashion-MNIST, held in memory, and the project's one pixel convention.

Pixel convention (used by every model, edit and metric in this package):
- an *image* is `uint8` in [0, 255], 0 = black background, 255 = white ink, shape (H, W) or (N, H, W);
- a *tensor* fed to or returned by a model is `float32` in [-1, 1], shape (B, 1, 28, 28).
`to_tensor` and `to_uint8` convert between the two.

The loader looks for the original IDX files in, in order: `data_dir`, `$FASHION_MNIST_DIR`,
`/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`), and finally downloads them
with torchvision into `~/.cache/genmodels/fashion-mnist`.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# One Fashion-MNIST test image per class (test_NNNNN_<label>.png), for the app's example buttons and tests.
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SIZE = 28
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_DIR = Path.home() / ".cache" / "genmodels" / "fashion-mnist"
ENV_VAR = "FASHION_MNIST_DIR"

# File stems of the original release; each may be stored gzipped or not.
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SIZES = {"train": 60_000, "test": 10_000}


@dataclass(frozen=True)
class FashionMNIST:
    """One split in memory: `images` uint8 (N, 28, 28), `labels` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str  # where the files were found, for logs and model cards

    def __len__(self) -> int:
        return len(self.labels)


def class_index(label: int | str) -> int:
    """Turn a class index or a (case-insensitive) class name into an index in 0..9."""
    if isinstance(label, str):
        text = label.strip()
        if text.isdigit():
            return class_index(int(text))
        lowered = [name.lower() for name in CLASS_NAMES]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        raise ValueError(f"Unknown class {label!r}; classes are: {', '.join(CLASS_NAMES)}.")
    if not 0 <= int(label) < len(CLASS_NAMES):
        raise ValueError(f"Class index {label} is out of range 0..{len(CLASS_NAMES) - 1}.")
    return int(label)


# --- pixel convention -------------------------------------------------------------------------


def to_tensor(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W) or (H, W) -> float tensor (N, 1, H, W) in [-1, 1]."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise ValueError(f"Expected uint8 images, got dtype {x.dtype}.")
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(f"Expected images of shape (N, H, W) or (H, W), got {tuple(x.shape)}.")
    return x.unsqueeze(1).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float tensor (N, 1, H, W) in [-1, 1] -> uint8 images (N, H, W) on the CPU."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"Expected a tensor of shape (N, 1, H, W), got {tuple(x.shape)}.")
    # Round half away from zero after clamping, so 0.0 maps to 128 on every device.
    pixels = x.detach().float().cpu().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return pixels.to(torch.uint8).squeeze(1)


# --- loading ----------------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}.")
    return body.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    """Return `folder/stem` or `folder/stem.gz`, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_from_folder(folder: Path, split: str) -> FashionMNIST | None:
    """Load `split` from a folder of original IDX files, or None when they are not there."""
    image_stem, label_stem = _FILES[split]
    image_path, label_path = _find(folder, image_stem), _find(folder, label_stem)
    if image_path is None or label_path is None:
        return None
    images = torch.from_numpy(_read_idx(image_path).copy())
    labels = torch.from_numpy(_read_idx(label_path).astype(np.int64))
    if images.shape != (_SIZES[split], IMAGE_SIZE, IMAGE_SIZE) or labels.shape != (_SIZES[split],):
        raise ValueError(f"Fashion-MNIST files in {folder} have unexpected shapes {tuple(images.shape)}.")
    return FashionMNIST(images=images, labels=labels, source=str(folder))


def _download(split: str) -> FashionMNIST:
    """Download with torchvision into the user cache (needs network access)."""
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    dataset = TorchvisionFashionMNIST(str(DOWNLOAD_DIR), train=split == "train", download=True)
    return FashionMNIST(images=dataset.data.clone(), labels=dataset.targets.clone(), source=str(DOWNLOAD_DIR))


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched, in order: `data_dir`, `$FASHION_MNIST_DIR`, Debian's folder."""
    folders = []
    if data_dir:
        folders.append(Path(data_dir))
    if os.environ.get(ENV_VAR):
        folders.append(Path(os.environ[ENV_VAR]))
    folders.append(DEBIAN_DIR)
    return folders


def load_fashion_mnist(split: str = "train", data_dir: str | Path | None = None, download: bool = True) -> FashionMNIST:
    """Load one split ("train" or "test") of Fashion-MNIST into memory."""
    if split not in _FILES:
        raise ValueError(f"Unknown split {split!r}; use 'train' or 'test'.")
    searched = candidate_dirs(data_dir)
    for folder in searched:
        dataset = _load_from_folder(folder, split)
        if dataset is not None:
            return dataset
    error = None
    if download:
        try:
            return _download(split)
        except Exception as exc:  # any network or disk failure: report it with the other ways out
            error = exc
    raise FileNotFoundError(
        "Fashion-MNIST was not found. Searched: "
        + ", ".join(str(folder) for folder in searched)
        + (f"; the torchvision download failed ({error})" if error else "; download was disabled")
        + ". Fix it in one of three ways: pass --data-dir FOLDER (or data_dir=) holding the original "
        + "*-idx?-ubyte[.gz] files; set $FASHION_MNIST_DIR to such a folder; or install Debian's "
        + "package (`apt-get install -y dataset-fashion-mnist`) or allow network access for the download."
    )


def batches(num_items: int, batch_size: int, generator: torch.Generator, drop_last: bool = True) -> list[torch.Tensor]:
    """Shuffled index batches over `num_items` items, reproducible from `generator`."""
    order = torch.randperm(num_items, generator=generator)
    chunks = list(order.split(batch_size))
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks
