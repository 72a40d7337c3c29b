"""Quality metrics on known cases, then the evaluate CLI on the bundled models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from genmodels.data import load_fashion_mnist, to_tensor
from genmodels.metrics import (
    classifier_outputs,
    fid,
    inception_score,
    kid,
    kth_neighbour_distance,
    precision_recall,
    psnr,
)
from genmodels.registry import load_model
from tests.conftest import needs_data

ROOT = Path(__file__).resolve().parent.parent


def gaussian(n: int, d: int, mean: float = 0.0, std: float = 1.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * std + mean


def test_identical_sets_score_about_zero():
    a = gaussian(3000, 8)
    assert fid(a, a) < 1e-6
    assert abs(kid(a, a)[0]) < 0.02  # unbiased estimate over random subsets: zero up to sampling noise
    assert precision_recall(a, a) == (1.0, 1.0)


def test_fid_of_two_gaussians_matches_the_closed_form():
    # N(0, I) vs N(m 1, s^2 I) in d dimensions: ||m 1||^2 + d (1 + s^2 - 2 s).
    d, m, s = 8, 0.5, 2.0
    expected = d * m**2 + d * (1 + s**2 - 2 * s)
    measured = fid(gaussian(40_000, d, seed=1), gaussian(40_000, d, m, s, seed=2))
    assert measured == pytest.approx(expected, rel=0.03)


def test_kid_and_precision_recall_separate_shifted_sets():
    real, shifted = gaussian(2000, 8, seed=3), gaussian(2000, 8, mean=3.0, seed=4)
    assert kid(real, shifted)[0] > 10 * abs(kid(real, gaussian(2000, 8, seed=5))[0]) + 1e-3
    precision, recall = precision_recall(real, shifted)
    assert precision < 0.1 and recall < 0.1
    # A fake set concentrated on part of the real one: high precision, low recall (mode collapse).
    collapsed = gaussian(2000, 8, std=0.3, seed=6)
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.5
    assert precision_recall(real, collapsed, real_radii=kth_neighbour_distance(real)) == (precision, recall)


def test_inception_score_bounds():
    assert inception_score(torch.full((100, 10), 0.1))[0] == pytest.approx(1.0)
    confident_even = torch.eye(10).repeat(10, 1)  # each class equally often, fully confident
    assert inception_score(confident_even, splits=1)[0] == pytest.approx(10.0, rel=1e-6)


def test_psnr_and_bad_inputs():
    x = torch.zeros(2, 1, 4, 4)
    assert psnr(x, x)[0] == 100.0
    assert psnr(x, x + 0.2)[0] == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.04)).item(), rel=1e-5)
    with pytest.raises(ValueError):
        fid(gaussian(10, 3), gaussian(10, 4))
    with pytest.raises(ValueError):
        fid(gaussian(10, 3), torch.full((10, 3), float("nan"), dtype=torch.float64))


@needs_data
def test_noise_scores_worse_than_blurred_data_which_scores_worse_than_real_data():
    classifier = load_model("classifier")
    test = to_tensor(load_fashion_mnist("test", download=False).images)
    train = to_tensor(load_fashion_mnist("train", download=False).images[:3000])
    reference, _ = classifier_outputs(classifier, test)
    blurred = F.gaussian_blur(train, kernel_size=[3, 3], sigma=[0.8, 0.8])
    noise = torch.rand(3000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    scores = [fid(reference, classifier_outputs(classifier, images)[0]) for images in (train, blurred, noise)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[0] < 0.05 * scores[2]


@needs_data
def test_evaluate_cli_prints_one_json_object():
    result = subprocess.run(
        [sys.executable, "-m", "genmodels", "evaluate", "--num", "200", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert {"floor: train images", "ceiling: uniform noise", "dcgan", "vae"} <= set(rows)
    for row in rows.values():
        assert {"fidc", "kidc", "precision", "recall", "is"} <= set(row)
    assert rows["floor: train images"]["fidc"] < rows["dcgan"]["fidc"] < rows["ceiling: uniform noise"]["fidc"]
    # The whole test set, whatever --num: the classifier's accuracy and the VAE's PSNR are the cards' own.
    from genmodels.hub import card_metrics
    from genmodels.registry import MODELS

    assert report["classifier_accuracy"] == card_metrics(MODELS["classifier"].checkpoint_path)["test accuracy"]
    assert (
        abs(
            report["vae_reconstruction_psnr_db"]
            - card_metrics(MODELS["vae"].checkpoint_path)["reconstruction PSNR (dB)"]
        )
        < 0.01
    )
