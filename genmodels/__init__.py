"""genmodels: small generative models of Fashion-MNIST and the maths to explore their latent spaces.

Pixel convention: model tensors are float (B, 1, 28, 28) in [-1, 1]; images are uint8 (see `data`).

Same seed, same pixels on every x86 CPU: Intel's MKL (torch's matrix products on the CPU) picks its
kernels by CPU, and their last-bit differences flip a rounded pixel of the guided flow's samples on one
CPU and not another (the golden hashes held on the machine that made them and failed on an AVX-512
Intel Xeon). MKL_CBWR=COMPATIBLE makes MKL take the same path everywhere; MKL reads it at its first
call, so setting it when the package is imported is in time. Measured on that Xeon, one thread: 16 flow
images 570 -> 580-600 ms, 64 DCGAN images 12-15 -> 18 ms. An environment that sets it keeps its value.
"""

import os

os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

from .data import CLASS_NAMES  # noqa: E402 (after MKL_CBWR), load_fashion_mnist, to_tensor, to_uint8
from .latent import interpolate  # noqa: E402, lerp, seed_to_z, slerp
from .registry import MODELS  # noqa: E402, generative_names, get_entry, load_model

__all__ = [
    "CLASS_NAMES",
    "MODELS",
    "generative_names",
    "get_entry",
    "interpolate",
    "lerp",
    "load_fashion_mnist",
    "load_model",
    "seed_to_z",
    "slerp",
    "to_tensor",
    "to_uint8",
]
