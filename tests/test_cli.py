"""`python -m genmodels`: help, sample to PNG and .npy, identical bytes for the same command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels.__main__ import main
from genmodels.registry import generative_names

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genmodels", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands():
    result = cli("--help")
    assert result.returncode == 0 and "sample" in result.stdout and "models" in result.stdout


def run(*args: str, capsys) -> tuple[int, str, str]:
    """The command in this process (the same code path without a fresh interpreter): code, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refuses before the command runs
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("model", generative_names())
def test_sample_png_grid_is_reproducible_to_the_byte(model, tmp_path, capsys):
    """The same command in a fresh interpreter and in this one writes the same bytes."""
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli("sample", "--model", model, "--num", "64", "--seed", "0", "--out", str(a)).returncode == 0
    assert run("sample", "--model", model, "--num", "64", "--seed", "0", "--out", str(b), capsys=capsys)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    image = np.asarray(Image.open(a))
    assert image.shape == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 tiles of 28 px with 2 px padding
    assert image.std() > 20


@pytest.mark.parametrize("model", generative_names())
def test_sample_npy_is_uint8_n_28_28(model, tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert run("sample", "--model", model, "--num", "5", "--seed", "3", "--out", str(out), capsys=capsys)[0] == 0
    array = np.load(out, allow_pickle=False)
    assert array.shape == (5, 28, 28) and array.dtype == np.uint8


def test_conditional_sample_by_class_name_or_index(tmp_path, capsys):
    by_name, by_index = tmp_path / "a.npy", tmp_path / "b.npy"
    assert (
        run("sample", "--model", "cgan", "--label", "Sneaker", "--num", "4", "--out", str(by_name), capsys=capsys)[0]
        == 0
    )
    assert run("sample", "--model", "cgan", "--label", "7", "--num", "4", "--out", str(by_index), capsys=capsys)[0] == 0
    assert np.array_equal(np.load(by_name), np.load(by_index))
    code, _, err = run("sample", "--model", "cgan", "--label", "hat", "--out", str(tmp_path / "c.png"), capsys=capsys)
    assert code == 2 and "Unknown class" in err
    code, _, err = run("sample", "--model", "dcgan", "--label", "7", "--out", str(tmp_path / "d.png"), capsys=capsys)
    assert code == 2 and "conditional" in err


def test_sample_errors_are_plain(tmp_path, capsys):
    """Bad arguments: exit code 2 and one sentence on stderr, in a fresh interpreter as in this one."""
    bad_count = cli("sample", "--model", "dcgan", "--num", "0", "--out", str(tmp_path / "x.png"))
    assert bad_count.returncode == 2 and "error:" in bad_count.stderr and "Traceback" not in bad_count.stderr
    code, _, err = run("sample", "--model", "dcgan", "--num", "2", "--out", str(tmp_path / "x.jpg"), capsys=capsys)
    assert code == 2 and ".png" in err
    code, _, err = run(
        "sample", "--model", "dcgan", "--temperature", "0.5", "--out", str(tmp_path / "x.png"), capsys=capsys
    )
    assert code == 2 and "truncation" in err
    code, _, err = run("sample", "--model", "stylegan", "--out", str(tmp_path / "x.png"), capsys=capsys)
    assert code != 0 and "invalid choice" in err


def test_flow_takes_steps_and_guidance(tmp_path, capsys):
    default, fewer, guided = (tmp_path / f"{name}.npy" for name in ("default", "fewer", "guided"))
    flow = ("sample", "--model", "flow", "--label", "Bag", "--num", "2")
    assert run(*flow, "--out", str(default), capsys=capsys)[0] == 0
    assert run(*flow, "--steps", "2", "--out", str(fewer), capsys=capsys)[0] == 0
    assert run(*flow, "--guidance", "1", "--out", str(guided), capsys=capsys)[0] == 0
    arrays = [np.load(path) for path in (default, fewer, guided)]
    assert len({array.tobytes() for array in arrays}) == 3
    code, _, err = run("sample", "--model", "dcgan", "--steps", "4", "--out", str(tmp_path / "x.png"), capsys=capsys)
    assert code == 2 and "flow" in err
    code, _, err = run(*flow, "--steps", "0", "--out", str(tmp_path / "y.png"), capsys=capsys)
    assert code == 2 and "Steps" in err
