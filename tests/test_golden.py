"""Golden pixels: the SHA-256 of what users see, for fixed seeds and settings, pinned.

Any change to the pixels of a shipped checkpoint (new weights, a torch upgrade that changes a kernel,
a refactor that reorders an operation) fails here loudly; update a hash only on purpose, with the
reason in the commit. The hashes were computed before the page moved from app.py into ui/ (commit
8dbf971) and hold after it; the flow's were added with its checkpoint and updated when it trained
10 more epochs (24 in all). When the flow gained its guide network (autoguidance) its default sample
changed, and the network alone (autoguidance 1) kept the pixels pinned before. The VAE's were updated
when the speedrun's recipe retrained it (10 minutes, session 19), and the flow's when its 60-minute
recipe (guided by its own average) replaced the flow model (session 22; the old flow's hashes held on
that session's AMD CPU as on the Intel ones before). They pin torch 2.14.1 on the CPU with one thread,
as the app serves.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from genmodels.data import EXAMPLES_DIR, to_tensor, to_uint8
from genmodels.lab import Lab
from genmodels.preprocess import prepare_upload
from genmodels.registry import load_model
from ui import generate, interpolate, roundtrip
from ui.files import OutputStore

EXAMPLE = str(sorted(EXAMPLES_DIR.glob("*.png"))[0])

MODEL_OUTPUTS = {
    "dcgan sample(16, seed=0)": "a631c3c309d6ad19259e669a34b847cb81ecb9bb88f8cb5d1944100218789302",
    "dcgan sample(16, seed=5, truncation=0.7)": "75ca0a83ca30009e501e717e90f20bc7e20fa3e0892703f2b25185c5010ad632",
    "cgan sample(16, seed=0, label=Bag)": "9f3056eda9054c4f62601daa7e7100bc58094387515632a7873901da8fe48a21",
    "vae sample(16, seed=0, temperature=1)": "a3d8bce7eaba2e037c41fbd2d91fb11165900175ffa986088705246ce5803a7b",
    "vae reconstruct(example 0)": "b0eddf04daca2d93ca31f4a1f174a33b951a4b38c2c63ca001281700e6961343",
    "classifier argmax(dcgan 64)": "f8e4a404e28b920b11fbea2ec1a33218d11a87027a00ed0534cfac2628ee0fa1",
    "flow sample(16, seed=0, label=Sneaker)": "49c990177c15aaf0ab2f546a014069a852c7103453717a905237d7dfa949a73c",
    "flow sample(16, seed=0, no class, steps=4, guidance=1)": (
        "8a5fa4bc79a2044de1ae942b51d27fb237dca9c5b6a3f4ff033d711e50e3a8a3"
    ),
    "flow sample(16, seed=0, no class, steps=4, guidance=1, autoguidance=1)": (
        "e8e3a9ba443599e4934fada0e817247c39632f221b6d6edda92adb0019be6759"
    ),
}
PAGE_OUTPUTS = {
    "generate dcgan seed 0 x16 grid": "9d3e4e63c92b345d2d68673ba1ba013e2853c76d98be4bf9a344d49a1ce9c705",
    "roundtrip example 0 reconstruction": "b0eddf04daca2d93ca31f4a1f174a33b951a4b38c2c63ca001281700e6961343",
    "interpolate vae seeds 0-1 slerp x8 strip": "54c2e36d83fdeeb12060479aabc9b54e88fe27ada7abe5f6dd20c81543d948d3",
}


def sha256(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array)).tobytes()).hexdigest()


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_outputs() -> dict[str, str]:
    dcgan, vae, cgan, flow, classifier = (load_model(name) for name in ("dcgan", "vae", "cgan", "flow", "classifier"))
    with torch.inference_mode():
        return {
            "dcgan sample(16, seed=0)": sha256(to_uint8(dcgan.sample(16, seed=0))),
            "dcgan sample(16, seed=5, truncation=0.7)": sha256(to_uint8(dcgan.sample(16, seed=5, truncation=0.7))),
            "cgan sample(16, seed=0, label=Bag)": sha256(to_uint8(cgan.sample(16, seed=0, label="Bag"))),
            "vae sample(16, seed=0, temperature=1)": sha256(to_uint8(vae.sample(16, seed=0, temperature=1.0))),
            "vae reconstruct(example 0)": sha256(to_uint8(vae.reconstruct(to_tensor(prepare_upload(EXAMPLE).image)))),
            "classifier argmax(dcgan 64)": sha256(classifier(dcgan.sample(64, seed=0)).argmax(1).to(torch.uint8)),
            "flow sample(16, seed=0, label=Sneaker)": sha256(to_uint8(flow.sample(16, seed=0, label="Sneaker"))),
            "flow sample(16, seed=0, no class, steps=4, guidance=1)": sha256(
                to_uint8(flow.sample(16, seed=0, label=None, steps=4, guidance=1.0))
            ),
            "flow sample(16, seed=0, no class, steps=4, guidance=1, autoguidance=1)": sha256(
                to_uint8(network_alone(flow).sample(16, seed=0, label=None, steps=4, guidance=1.0))
            ),
        }


def network_alone(flow):
    """The flow model with autoguidance off: what its network gives without the guide."""
    return flow.with_sampling(autoguidance=1.0)


def test_shipped_checkpoints_give_the_pinned_pixels():
    assert model_outputs() == MODEL_OUTPUTS


def test_the_page_shows_the_pinned_pixels(tmp_path):
    lab, store = Lab("cpu"), OutputStore(tmp_path)
    found = {
        "generate dcgan seed 0 x16 grid": sha256(generate.generate(lab, "dcgan", 0, 16)[0]),
        "roundtrip example 0 reconstruction": sha256(roundtrip.roundtrip(lab, EXAMPLE)[1][1]),
        "interpolate vae seeds 0-1 slerp x8 strip": sha256(interpolate.interpolate(lab, store, "vae", 0, 1, 8)[0]),
    }
    assert found == PAGE_OUTPUTS
