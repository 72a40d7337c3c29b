"""Shared fixtures: tiny configs for every registered family, and checks for the data and browser.

Tests that need Fashion-MNIST's files or Chromium skip on a machine without them; under CI
(`GENMODELS_CI=1`, set by .ci/run) they run and fail instead, so a green CI never hides a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict

# The studio's directions are cached by weights; the tests (and the servers they start) use their own folder.
os.environ.setdefault("GENMODELS_CACHE", tempfile.mkdtemp(prefix="genmodels-test-cache-"))

import gradio as gr
import pytest

from benchmarks.bench_load import free_port
from genmodels.cgan import CGANConfig
from genmodels.classifier import ClassifierConfig
from genmodels.data import candidate_dirs
from genmodels.dcgan import DCGANConfig
from genmodels.encoder import EncoderConfig
from genmodels.flow import FlowConfig, FlowSampling
from genmodels.vae import VAEConfig

# One tiny config per registry entry: a new family must add one here (test_models checks it).
TINY_CONFIGS = {
    "dcgan": DCGANConfig(latent_dim=8, gen_width=8, disc_width=8),
    "vae": VAEConfig(latent_dim=4, width=4, hidden_dim=16),
    "cgan": CGANConfig(latent_dim=8, embed_dim=4, gen_width=8, disc_width=8),
    "flow": FlowConfig(
        channels=[8, 8, 16],
        embed_dim=16,
        groups=4,
        attention_heads=2,
        sampling=asdict(FlowSampling(steps=2, guidance=1.5, guidance_below=1.0)),
    ),
    "dcgan-encoder": EncoderConfig(latent_dim=8, width=4, hidden=16),
    "cgan-encoder": EncoderConfig(latent_dim=8, width=4, hidden=16, num_classes=10),
    "classifier": ClassifierConfig(width=4, feature_dim=16),
}

# The training script (training/<script>.py) of each family that has its own (the cGAN's is train_gan).
SCRIPTS = {
    "dcgan": "train_gan",
    "vae": "train_vae",
    "flow": "train_flow",
    "classifier": "train_classifier",
    "dcgan-encoder": "train_encoder",
}


def fashion_mnist_available() -> bool:
    """True when the original Fashion-MNIST files are on disk (CI installs Debian's package)."""
    return any(
        (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists()
        for folder in candidate_dirs()
    )


IN_CI = os.environ.get("GENMODELS_CI") == "1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

needs_data = pytest.mark.skipif(
    not IN_CI and not fashion_mnist_available(),
    reason="Fashion-MNIST files not installed (apt-get install -y dataset-fashion-mnist)",
)
needs_browser = pytest.mark.skipif(
    not IN_CI and not os.path.exists(CHROMIUM),
    reason="Chromium not installed (apt-get install -y chromium)",
)


@contextlib.contextmanager
def served(demo: gr.Blocks) -> Iterator[str]:
    """`demo` served in this process on a free local port with the app's launch options: its URL."""
    from ui.serving import LAUNCH_OPTIONS

    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def pytest_configure(config) -> None:
    """`pytest -m "not slow"`: the fast inner loop leaves out the tests that train or stream for long."""
    config.addinivalue_line("markers", "slow: trains a model or streams for tens of seconds")
