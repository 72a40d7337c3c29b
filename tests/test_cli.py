"""`python -m genmodels`: help, sample to PNG and .npy, identical bytes for the same command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genmodels.__main__ import main
from genmodels.data import to_uint8
from genmodels.registry import MODELS, generative_names, load_model

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
    if not MODELS[model].conditional:  # (a conditional model's classes in turn: the test below)
        assert np.array_equal(array, to_uint8(load_model(model).sample(5, seed=3)).numpy()), "the model's samples"


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


def test_a_conditional_model_without_a_label_draws_the_ten_classes_in_turn_in_batches(tmp_path, capsys, monkeypatch):
    """cGAN, 23 images in batches of 5 with a progress bar: image i is seed i's sample of class i mod 10,
    the pixels of drawing it alone; flow with --label any draws without a class."""
    import genmodels.__main__ as command

    monkeypatch.setattr(command, "SAMPLE_BATCH", 5)
    out = tmp_path / "c.npy"
    code, printed, bar = run(
        "sample", "--model", "cgan", "--num", "23", "--seed", "4", "--out", str(out), capsys=capsys
    )
    assert code == 0 and "the ten classes in turn" in printed and "23/23" in bar
    cgan = load_model("cgan")
    alone = np.stack([to_uint8(cgan.sample(1, seed=4 + i, label=i % 10))[0].numpy() for i in range(23)])
    assert np.array_equal(np.load(out), alone)

    out = tmp_path / "f.npy"
    flow = ("sample", "--model", "flow", "--num", "2", "--steps", "2", "--out", str(out))
    assert run(*flow, "--label", "any", capsys=capsys)[0] == 0
    unconditional = to_uint8(load_model("flow").sample(2, seed=0, label=None, steps=2)).numpy()
    assert np.array_equal(np.load(out), unconditional)
    code, _, err = run("sample", "--model", "cgan", "--label", "any", "--out", str(out), capsys=capsys)
    assert code == 2 and "--label any is for flow" in err
    code, _, err = run("sample", "--model", "dcgan", "--num", "1000000", "--out", str(out), capsys=capsys)
    assert code == 2 and "--num must be between 1 and 100000" in err
