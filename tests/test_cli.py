"""`python -m genmodels`: help, sample to PNG and .npy, identical bytes for the same command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels.registry import generative_names

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genmodels", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands():
    result = cli("--help")
    assert result.returncode == 0 and "sample" in result.stdout and "models" in result.stdout


@pytest.mark.parametrize("model", generative_names())
def test_sample_png_grid_is_reproducible_to_the_byte(model, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli("sample", "--model", model, "--num", "64", "--seed", "0", "--out", str(a)).returncode == 0
    assert cli("sample", "--model", model, "--num", "64", "--seed", "0", "--out", str(b)).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    image = np.asarray(Image.open(a))
    assert image.shape == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 tiles of 28 px with 2 px padding
    assert image.std() > 20


@pytest.mark.parametrize("model", generative_names())
def test_sample_npy_is_uint8_n_28_28(model, tmp_path):
    out = tmp_path / "x.npy"
    assert cli("sample", "--model", model, "--num", "5", "--seed", "3", "--out", str(out)).returncode == 0
    array = np.load(out, allow_pickle=False)
    assert array.shape == (5, 28, 28) and array.dtype == np.uint8


def test_conditional_sample_by_class_name_or_index(tmp_path):
    by_name, by_index = tmp_path / "a.npy", tmp_path / "b.npy"
    assert cli("sample", "--model", "cgan", "--label", "Sneaker", "--num", "4", "--out", str(by_name)).returncode == 0
    assert cli("sample", "--model", "cgan", "--label", "7", "--num", "4", "--out", str(by_index)).returncode == 0
    assert np.array_equal(np.load(by_name), np.load(by_index))
    wrong = cli("sample", "--model", "cgan", "--label", "hat", "--out", str(tmp_path / "c.png"))
    assert wrong.returncode == 2 and "Unknown class" in wrong.stderr
    unconditional = cli("sample", "--model", "dcgan", "--label", "7", "--out", str(tmp_path / "d.png"))
    assert unconditional.returncode == 2 and "conditional" in unconditional.stderr


def test_sample_errors_are_plain(tmp_path):
    bad_count = cli("sample", "--model", "dcgan", "--num", "0", "--out", str(tmp_path / "x.png"))
    assert bad_count.returncode == 2 and "error:" in bad_count.stderr and "Traceback" not in bad_count.stderr
    bad_suffix = cli("sample", "--model", "dcgan", "--num", "2", "--out", str(tmp_path / "x.jpg"))
    assert bad_suffix.returncode == 2 and ".png" in bad_suffix.stderr
    wrong_knob = cli("sample", "--model", "dcgan", "--temperature", "0.5", "--out", str(tmp_path / "x.png"))
    assert wrong_knob.returncode == 2 and "truncation" in wrong_knob.stderr
    unknown = cli("sample", "--model", "stylegan", "--out", str(tmp_path / "x.png"))
    assert unknown.returncode != 0 and "invalid choice" in unknown.stderr
