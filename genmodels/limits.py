"""Every limit on what a request may ask for, and the checks that enforce them with a sentence.

One module for the lab, the Generate settings, the flow model, the CLI and the page: a limit changed here
changes everywhere. A bad value raises a ValueError that names it; the page shows it as is.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .latent import MAX_SEED

ANY_CLASS = "any class"  # the label that asks a family that can sample without a class (flow) for none
MAX_IMAGES = 64  # images per request in the app
MAX_APP_SEED = MAX_SEED - MAX_IMAGES  # the largest seed a request may start from: all its images' seeds fit
MAX_STEPS = 32  # interpolation steps
MAX_TRUNCATION = 4.0
MAX_TEMPERATURE = 3.0
MAX_MOVE = 10.0  # amount along a direction, in quarters of a typical latent's length
MAX_MAP = 1e3  # map coordinates
MAX_KEYFRAMES = 8
MAX_SAMPLING_STEPS = 50  # the flow's ODE steps per sample (two network evaluations each)
MAX_GUIDANCE = 5.0
MAX_RESAMPLE = 10  # RePaint's resampling rounds per step
REFINE_ITERATIONS = 70  # L-BFGS iterations from a GAN encoder's guess (the app's: the registry's, per encoder)
# An absolute path: a "/" that starts a word (not one inside a URL or an OWNER/NAME repo id).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"()]+")


def check_int(name: str, value: float, low: int, high: int) -> int:
    """`value` as an int in [low, high], or a ValueError naming `name` (NaN, inf, fractions refused)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a whole number between {low} and {high}.")
    if isinstance(value, (int, np.integer)):
        number = int(value)  # exact: large seeds do not pass through a float
    else:
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value}.")
        number = int(number)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}.")
    return number


def check_float(name: str, value: float, low: float, high: float) -> float:
    """`value` as a float in [low, high], or a ValueError naming `name`."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number between {low} and {high}.")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a number between {low} and {high}, got {value}.")
    return number


def without_server_paths(message: str) -> str:
    """`message` with every absolute path cut to its last part, for what the page shows a visitor."""

    def last_part(match: re.Match) -> str:
        path = match.group(0)
        core = path.rstrip("/.,;:")
        return (core.rsplit("/", 1)[-1] or "/") + path[len(core) :].lstrip("/")

    return ABSOLUTE_PATH.sub(last_part, message)


def check_strength(strength: float) -> float:
    """SDEdit's strength as a float in [0, 1] (the time the image is noised to), or a ValueError."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"Strength must be a number between 0 and 1, got {strength!r}.")
    return float(strength)
