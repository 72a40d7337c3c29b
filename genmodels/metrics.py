"""Quality numbers for generated and reconstructed images, in our own classifier's feature space.

No Inception network can be downloaded here, and Inception is a poor judge of 28x28 grayscale (the
FID authors advise a classifier trained on the data itself, "one of the last layers"). So FIDc and
KIDc use the penultimate features of `genmodels.classifier.Classifier`, and the Inception Score its
class probabilities. FID and KID come from torchmetrics, fed precomputed features.

Tensors follow the package convention: images (N, 1, 28, 28) in [-1, 1].
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

MAX_PSNR = 100.0  # dB reported for identical images, where the formula is infinite


class _Precomputed(nn.Module):
    """Identity "feature network": lets torchmetrics' FID and KID take features computed elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.inference_mode()
def classifier_outputs(
    classifier: nn.Module, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features (N, D) and class probabilities (N, C) of images in [-1, 1], on the CPU."""
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    features, probabilities = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        f = classifier.features(x)
        features.append(f.double().cpu())
        probabilities.append(classifier.head(f).softmax(dim=1).double().cpu())
    classifier.train(was_training)
    return torch.cat(features), torch.cat(probabilities)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) (Heusel et al. 2017)."""
    _check_features(real, fake)
    from torchmetrics.image.fid import FrechetInceptionDistance  # evaluation only: the app never loads it

    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), reset_real_features=True)
    metric.set_dtype(torch.float64)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(0.0, float(metric.compute()))


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic kernel; (mean, std)."""
    _check_features(real, fake)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will save all extracted features": intended here
        from torchmetrics.image.kid import KernelInceptionDistance  # evaluation only

        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    torch.manual_seed(0)  # KID draws random subsets; fix them so the number is reproducible
    mean, std = metric.compute()
    return float(mean), float(std)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 2048, real_radii: torch.Tensor | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour manifolds.

    Precision: the share of fake samples inside the real manifold (the union of balls around each
    real sample reaching its k-th nearest real neighbour). Recall: the share of real samples inside
    the fake manifold. `real_radii`: kth_neighbour_distance(real, k), when scoring many sets
    against the same real features.
    """
    _check_features(real, fake)
    real, fake = real.float(), fake.float()
    if real_radii is None:
        real_radii = kth_neighbour_distance(real, k, chunk)
    fake_radii = kth_neighbour_distance(fake, k, chunk)
    precision = _inside_manifold(fake, real, real_radii, chunk).float().mean().item()
    recall = _inside_manifold(real, fake, fake_radii, chunk).float().mean().item()
    return precision, recall


def kth_neighbour_distance(points: torch.Tensor, k: int = 3, chunk: int = 2048) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set, (N,)."""
    radii = []
    for start in range(0, len(points), chunk):
        distances = torch.cdist(points[start : start + chunk], points)  # (chunk, N)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _inside_manifold(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each query, whether it lies within radii[j] of some points[j], (Q,) bool."""
    inside = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start : start + chunk], points)  # (chunk, N)
        inside.append((distances <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside)


def inception_score(probabilities: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over `splits` equal parts (Salimans et al. 2016); (mean, std).

    With our classifier's p(y|x) in place of Inception's: 1 for a single repeated class, up to 10
    (the number of classes) for confident, evenly spread samples.
    """
    if probabilities.ndim != 2 or len(probabilities) < splits:
        raise ValueError(f"Need at least {splits} probability rows, got shape {tuple(probabilities.shape)}.")
    scores = []
    for part in probabilities.double().chunk(splits):
        marginal = part.mean(dim=0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-12)) - torch.log(marginal.clamp_min(1e-12)))).sum(dim=1)
        scores.append(math.exp(kl.mean().item()))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, std


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, 10 log10(range^2 / MSE), range 2 for [-1, 1]."""
    if prediction.shape != target.shape:
        raise ValueError(f"Shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}.")
    mse = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(4.0 / mse.clamp_min(1e-12))).clamp_max(MAX_PSNR)


def _check_features(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"Expected two feature sets (N, D) of equal D, got {tuple(real.shape)} and {tuple(fake.shape)}."
        )
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("Each feature set needs at least 2 samples.")
    if not (torch.isfinite(real).all() and torch.isfinite(fake).all()):
        raise ValueError("Features contain NaN or infinite values.")
