"""genmodels: small generative models of Fashion-MNIST and the maths to explore their latent spaces.

Pixel convention: model tensors are float (B, 1, 28, 28) in [-1, 1]; images are uint8 (see `data`).
"""

from .data import CLASS_NAMES, load_fashion_mnist, to_tensor, to_uint8
from .latent import interpolate, lerp, seed_to_z, slerp
from .registry import MODELS, generative_names, get_entry, load_model

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
