"""Evaluate every model in one run: FIDc, KIDc, precision, recall and IS next to the floor and ceiling.

Reference set: the 10,000 test images. Floor: `num` training images (what a perfect model would
score). Ceiling: `num` images of uniform noise. Generated sets use seeds 0..num-1. Also reported:
the classifier's test accuracy and the VAE's reconstruction PSNR on the test set.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .classifier import accuracy
from .data import CLASS_NAMES, load_fashion_mnist, to_tensor
from .hub import METRIC_NAMES, update_card_evaluation, write_atomic
from .latent import seed_to_z
from .metrics import (
    classifier_outputs,
    fid,
    inception_score,
    kid,
    kth_neighbour_distance,
    precision_recall,
    psnr,
)
from .registry import MODELS, generative_names, load_model

BATCH = 1000  # images generated or classified per forward pass


@torch.inference_mode()
def generate_set(
    model: torch.nn.Module, num: int, conditional: bool = False, classes: list[int] | None = None, **settings
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`num` samples (num, 1, 28, 28) from seeds 0..num-1, and for a conditional model their labels.

    A conditional model draws every class of `classes` (default: all ten) equally often: sample i has
    class classes[i mod len(classes)]; `classes=[]` draws it without a class (a model that learned
    from pictures without labels). `settings` go to the model's `decode` (flow: steps, guidance).
    """
    if not conditional or classes == []:
        parts = [model.sample(min(BATCH, num - start), seed=start).cpu() for start in range(0, num, BATCH)]
        return torch.cat(parts), None
    device = next(model.parameters()).device
    pool = torch.tensor(classes if classes else range(len(CLASS_NAMES)))
    labels = pool[torch.arange(num) % len(pool)]
    parts = []
    for start in range(0, num, BATCH):
        z = seed_to_z(start, min(BATCH, num - start), model.latent_dim, device=device)
        parts.append(model.decode(z, labels[start : start + len(z)].to(device), **settings).cpu())
    return torch.cat(parts), labels


def score(
    classifier: torch.nn.Module,
    reference: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    reference_radii: torch.Tensor | None = None,
    quick: bool = False,
) -> dict[str, float]:
    """All sample-quality metrics of `images` against the reference features (N, D); `quick`: FIDc
    (and the class match) alone, without KIDc's subsets and precision/recall's nearest neighbours.

    With `labels` (a conditional model's asked classes), also the share classified as asked.
    `reference_radii` (kth_neighbour_distance(reference)) saves recomputing them for every set.
    """
    features, probabilities = classifier_outputs(classifier, images)
    if quick:
        return {**class_match(probabilities, labels), "fidc": round(fid(reference, features), 3)}
    kid_mean, kid_std = kid(reference, features)
    precision, recall = precision_recall(reference, features, real_radii=reference_radii)
    is_mean, is_std = inception_score(probabilities)
    return {
        **class_match(probabilities, labels),
        "fidc": round(fid(reference, features), 3),
        "kidc": round(kid_mean, 5),
        "kidc_std": round(kid_std, 5),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "is": round(is_mean, 3),
        "is_std": round(is_std, 3),
    }


@torch.inference_mode()
def class_match(probabilities: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    """The share of samples the classifier puts in the class asked for, overall and in the worst class."""
    if labels is None:
        return {}
    hits = (probabilities.argmax(dim=1) == labels).double()
    return {
        "class_match": round(hits.mean().item(), 4),
        "class_match_min": round(min(hits[labels == c].mean().item() for c in labels.unique()), 4),
    }


@torch.inference_mode()
def reference_features(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The classifier's features (N, D) of the reference images (N, 1, 28, 28), kept on disk by a hash of
    both: every run's card scores against the same test set, and its 10,000 images take ~9 s on a thread."""
    from .studio import DIRECTIONS_CACHE, fingerprint

    digest = fingerprint([classifier], hashlib.sha256(images.numpy().tobytes()).hexdigest())[:32]
    path = DIRECTIONS_CACHE.parent / "features" / f"{digest}.safetensors"
    try:
        return load_file(path)["features"]
    except (OSError, SafetensorError, KeyError):
        pass
    features, _ = classifier_outputs(classifier, images)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, save({"features": features.contiguous()}))
    except OSError:  # a read-only cache: computed every time
        pass
    return features


def vae_psnr(vae: torch.nn.Module, images: torch.Tensor) -> float:
    """Mean PSNR (dB) of the VAE's reconstructions (posterior mean) of `images`."""
    device = next(vae.parameters()).device
    values = [
        psnr(vae.reconstruct(images[s : s + BATCH].to(device)).cpu(), images[s : s + BATCH])
        for s in range(0, len(images), BATCH)
    ]
    return round(torch.cat(values).mean().item(), 3)


def evaluate(
    models: list[str] | None = None,
    num: int = 10_000,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    extra: dict[str, tuple[str, str | Path]] | None = None,
) -> dict[str, Any]:
    """The full report as one JSON-able dict (see the module docstring).

    `extra` adds rows for other checkpoints, {row label: (family name, checkpoint folder)}, scored in
    the same run as the bundled models (the benchmarks compare recipes this way).
    """
    started = time.perf_counter()
    models = models if models is not None else generative_names()
    for name in models:
        if name not in generative_names():
            raise ValueError(f"{name!r} is not a generative model; choose from {', '.join(generative_names())}.")
    if not 10 <= num <= 60_000:
        raise ValueError(f"--num must be between 10 and 60000, got {num}.")
    sets = {name: (name, MODELS[name].checkpoint_path) for name in models}
    sets.update(extra or {})

    # 1. Reference features from the test set; the classifier's own accuracy on it.
    classifier = load_model("classifier", device)
    test = load_fashion_mnist("test", data_dir)
    test_x = to_tensor(test.images)
    reference, probabilities = classifier_outputs(classifier, test_x)  # one pass gives features and accuracy
    radii = kth_neighbour_distance(reference)  # the real manifold, shared by every row
    report: dict[str, Any] = {
        "num": num,
        "reference": f"{len(test_x)} test images",
        "classifier_accuracy": round((probabilities.argmax(dim=1) == test.labels).double().mean().item(), 4),
        "rows": {},
    }

    # 2. The floor (real training images) and the ceiling (uniform noise).
    train = load_fashion_mnist("train", data_dir)
    report["rows"]["floor: train images"] = score(
        classifier, reference, to_tensor(train.images[:num]), reference_radii=radii
    )
    noise = torch.rand(num, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    report["rows"]["ceiling: uniform noise"] = score(classifier, reference, noise, reference_radii=radii)

    # 3. Every generative model, and the VAE's reconstructions.
    for label, (family, folder) in sets.items():
        model = load_model(family, device, folder)
        images, labels = generate_set(model, num, MODELS[family].conditional)
        report["rows"][label] = score(classifier, reference, images, labels, radii)
        if MODELS[family].encoder:
            report[f"{label}_reconstruction_psnr_db"] = vae_psnr(model, test_x)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


CARD_KEYS = ("fidc", "kidc", "precision", "recall", "is", "class_match")


def card_task(name: str) -> str:
    """The model-index task type of family `name`."""
    entry = MODELS[name]
    if entry.inverts:
        return "image-feature-extraction"
    if not entry.generative:
        return "image-classification"
    return "conditional-image-generation" if entry.conditional else "unconditional-image-generation"


def update_cards(report: dict[str, Any]) -> list[Path]:
    """Write each evaluated model's numbers into its bundled checkpoint's model card."""
    table = markdown(report)
    written = []
    for name, entry in MODELS.items():
        if entry.generative and name in report["rows"]:
            row = report["rows"][name]
            metrics = {key: row[key] for key in CARD_KEYS if key in row}
            if f"{name}_reconstruction_psnr_db" in report:
                metrics["psnr_db"] = report[f"{name}_reconstruction_psnr_db"]
        elif name == "classifier":
            metrics = {"accuracy": report["classifier_accuracy"]}
        else:
            continue
        section = f"Measured by `python -m genmodels evaluate --num {report['num']} --update-cards`:\n\n{table}"
        update_card_evaluation(entry.checkpoint_path, card_task(name), metrics, section)
        written.append(entry.checkpoint_path / "README.md")
    return written


@torch.inference_mode()
def encoder_psnr(
    encoder: nn.Module, generator: nn.Module, x: torch.Tensor, labels: torch.Tensor, batch: int = 1000
) -> float:
    """Mean PSNR (dB) of G(E(x)) to x over `x` (images in [-1, 1]); labels for a conditional pair."""
    device = next(encoder.parameters()).device
    conditional = encoder.config.num_classes > 0
    values = []
    for start in range(0, len(x), batch):
        images = x[start : start + batch].to(device)
        y = labels[start : start + batch].to(device) if conditional else None
        values.append(psnr(generator.decode(encoder(images, y), y), images).cpu())
    return torch.cat(values).mean().item()


def evaluate_checkpoint(
    name: str,
    folder: str | Path,
    num: int = 10_000,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    reference: torch.Tensor | None = None,
    classes: list[int] | None = None,
    quick: bool = False,
) -> dict[str, float]:
    """Score one checkpoint folder of family `name` and write the numbers into its model card.

    Generative models get FIDc, KIDc, precision, recall and IS from `num` samples (and the VAE its
    reconstruction PSNR, the cGAN its class match); the classifier its test accuracy. The reference is
    Fashion-MNIST's test set, or `reference` (uint8 (N, 28, 28): the test images of the classes a model
    learned, or the user's own pictures); a conditional model draws `classes` (see `generate_set`).
    `quick`: FIDc alone (see `score`), as the app's Train tab shows it.
    """
    test = load_fashion_mnist("test", data_dir) if reference is None else None
    test_x = to_tensor(test.images if reference is None else reference)
    model = load_model(name, device, folder)
    if (
        MODELS[name].inverts and test is not None
    ):  # an encoder: how well its guess alone reconstructs, G(E(x)) against x
        generator = load_model(MODELS[name].inverts, device)
        metrics = {"psnr_db": round(encoder_psnr(model, generator, test_x, test.labels), 3)}
    elif not MODELS[name].generative:
        if test is None:  # (an encoder too: both are scored on the labelled test set)
            raise ValueError("A classifier is scored on Fashion-MNIST's labelled test set only.")
        metrics = {"accuracy": round(accuracy(model, test_x, test.labels), 4)}
    else:
        classifier = load_model("classifier", device)
        features = reference_features(classifier, test_x)
        images, labels = generate_set(model, num, MODELS[name].conditional, classes)
        row = score(classifier, features, images, labels, quick=quick)
        metrics = {key: row[key] for key in CARD_KEYS if key in row}
        if MODELS[name].encoder:
            metrics["psnr_db"] = vae_psnr(model, test_x)
    lines = [
        f"Measured on the {len(test_x)} "
        + ("Fashion-MNIST test images" if reference is None else "reference images it learned from")
        + (
            f" with {num} samples (seeds 0-{num - 1}) in our classifier's feature space"
            if MODELS[name].generative
            else ""
        )
        + " when training finished. `python -m genmodels evaluate` puts these next to the floor, the noise"
        " ceiling and the other models.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {METRIC_NAMES.get(key, key)} | {value} |" for key, value in metrics.items()),
    ]
    update_card_evaluation(folder, card_task(name), metrics, "\n".join(lines))
    return metrics


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table plus the single numbers."""
    lines = [
        f"Samples per set: {report['num']} · reference: {report['reference']} · "
        f"classifier test accuracy: {report['classifier_accuracy']:.4f}",
        "",
        "| set | FIDc ↓ | KIDc ↓ | precision ↑ | recall ↑ | IS ↑ |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in report["rows"].items():
        lines.append(
            f"| {name} | {row['fidc']:.2f} | {row['kidc']:.4f} ± {row['kidc_std']:.4f} | {row['precision']:.3f} | "
            f"{row['recall']:.3f} | {row['is']:.2f} ± {row['is_std']:.2f} |"
        )
    extras = [f"{key.replace('_', ' ')}: {value}" for key, value in report.items() if key.endswith("_psnr_db")]
    extras += [
        f"{name}: {row['class_match']:.1%} of samples classified as the asked class "
        f"(worst class {row['class_match_min']:.1%})"
        for name, row in report["rows"].items()
        if "class_match" in row
    ]
    lines += ["", *extras, f"Evaluated in {report['seconds']} s."]
    return "\n".join(lines)
