"""The Generate tab's settings as a dict: checked from a shared link or pasted JSON, written back as JSON.

Values may arrive as strings (a URL's query) or numbers (JSON); missing keys take the defaults, and an
unknown key or a bad value raises a ValueError that names it.
"""

from __future__ import annotations

import json

from .data import CLASS_NAMES
from .limits import (
    ANY_CLASS,
    MAX_APP_SEED,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_SAMPLING_STEPS,
    MAX_TEMPERATURE,
    MAX_TRUNCATION,
    check_float,
    check_int,
)

DEFAULTS: dict[str, object] = {
    "model": None,  # the first generative model loaded
    "seed": 0,
    "num": 16,
    "truncation": 0.0,
    "temperature": 1.0,
    "label": CLASS_NAMES[0],
    "steps": None,  # None: the flow checkpoint's own (`FlowModel.sampling`)
    "guidance": None,
}
MAX_JSON_CHARS = 10_000  # settings text longer than this is refused before parsing


def number(value: object) -> int | float:
    """A setting as a number: URL values arrive as strings; whole numbers stay exact ints."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdecimal():
            return int(text)
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a number.")


def check_settings(settings: dict, models: list[str]) -> dict[str, object]:
    """Settings (any subset of DEFAULTS' keys) -> every setting, checked; `models` are those loaded."""
    unknown = sorted(str(key) for key in set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown setting {unknown[0]!r}; settings are {', '.join(DEFAULTS)}.")
    values = {**DEFAULTS, "model": (models or [None])[0], **settings}
    if values["model"] not in models:
        raise ValueError(f"Unknown model {values['model']!r}; choose one of {', '.join(models)}.")
    if values["label"] not in (*CLASS_NAMES, ANY_CLASS):
        raise ValueError(f"Unknown class {values['label']!r}; choose one of {', '.join(CLASS_NAMES)} or {ANY_CLASS}.")
    return {
        "model": values["model"],
        "seed": check_int("Seed", number(values["seed"]), 0, MAX_APP_SEED),
        "num": check_int("Number of images", number(values["num"]), 1, MAX_IMAGES),
        "truncation": check_float("Truncation", number(values["truncation"]), 0.0, MAX_TRUNCATION),
        "temperature": check_float("Temperature", number(values["temperature"]), 0.0, MAX_TEMPERATURE),
        "label": values["label"],
        "steps": None
        if values["steps"] is None
        else check_int("Steps", number(values["steps"]), 1, MAX_SAMPLING_STEPS),
        "guidance": (
            None
            if values["guidance"] is None
            else check_float("Guidance", number(values["guidance"]), 0.0, MAX_GUIDANCE)
        ),
    }


def parse_settings(text: str | None, models: list[str]) -> dict[str, object]:
    """Settings JSON (as `settings_json` writes it) -> every setting, checked."""
    if not isinstance(text, str) or len(text) > MAX_JSON_CHARS:
        raise ValueError(f"Paste the settings as JSON text of at most {MAX_JSON_CHARS:,} characters.")
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"The settings are not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    except RecursionError:
        raise ValueError("The settings are nested too deeply to be settings.") from None
    if not isinstance(settings, dict):
        raise ValueError('Settings must be a JSON object such as {"model": "dcgan", "seed": 3}.')
    return check_settings(settings, models)


def settings_json(settings: dict, models: list[str]) -> str:
    """The checked settings as one line of JSON."""
    return json.dumps(check_settings(settings, models))
