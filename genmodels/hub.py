"""Checkpoints as Hugging Face Hub folders: `config.json` + `model.safetensors` (+ `README.md`).

`HubModelMixin` is `PyTorchModelHubMixin` with two safety changes every model family shares:
weights are read only from `model.safetensors` (the stock mixin falls back to a pickled
`pytorch_model.bin`), and loading is strict, so a checkpoint of the wrong family or shape fails with
a `ValueError` instead of silently keeping random weights.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import (
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    PyTorchModelHubMixin,
    constants,
    get_token,
    hf_hub_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError
from safetensors.torch import load_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class HubModelMixin(PyTorchModelHubMixin):
    """Save/load/push through the Hub mixin, loading only safetensors, strictly."""

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ):
        if "config" not in model_kwargs:
            raise ValueError(f"{model_id} has no readable {CONFIG_FILE}; it is not a {cls.__name__} checkpoint.")
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            weights = Path(model_id) / WEIGHTS_FILE
            if not weights.is_file():
                pickles = [p.name for p in Path(model_id).iterdir() if p.suffix in PICKLE_SUFFIXES]
                hint = f" Found {', '.join(pickles)}: pickle files are never loaded." if pickles else ""
                raise ValueError(f"{model_id} has no {WEIGHTS_FILE}.{hint}")
        else:
            weights = Path(
                hf_hub_download(
                    repo_id=model_id,
                    filename=WEIGHTS_FILE,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            )
        try:
            load_model(model, str(weights), strict=strict)
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise ValueError(f"{weights} is not a valid {cls.__name__} checkpoint: {exc}") from exc
        # load_model copies the file's tensors into the model's CPU parameters, whatever its `device`:
        # the model itself has to move.
        return model.to(map_location).eval()


REVISION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")  # a branch, tag or commit hash


@dataclass(frozen=True)
class HubRepo:
    """A model repository on the Hub, optionally pinned to a revision (branch, tag or commit)."""

    repo_id: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubRepo:
        """`OWNER/NAME` or `OWNER/NAME@REVISION`, validated; a ValueError says what is wrong.

        Only Hub ids are accepted, never local paths: no leading `/` or `.`, no `..`, one `/`.
        """
        repo_id, _, revision = text.strip().partition("@")
        if repo_id.count("/") != 1:
            raise ValueError(f"{text!r} is not a Hub model id: write OWNER/NAME or OWNER/NAME@REVISION.")
        try:
            validate_repo_id(repo_id)
        except HFValidationError as exc:
            raise ValueError(f"{text!r} is not a valid Hub model id: {exc}") from exc
        if revision and (not REVISION_PATTERN.fullmatch(revision) or ".." in revision):
            raise ValueError(f"{revision!r} is not a valid revision: use a branch, a tag or a commit hash.")
        return cls(repo_id, revision or None)

    def __str__(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


def download_checkpoint(repo: HubRepo, cache_dir: str | Path | None = None) -> Path:
    """Fetch `config.json`, `model.safetensors` and (if present) the card of `repo`; return the folder.

    The folder is a snapshot in the Hub cache, ready for `from_pretrained`. Honours `HF_ENDPOINT`
    and `HF_HUB_OFFLINE` (then only the cache is used). Every failure is a ValueError in plain words:
    the repo or revision does not exist, it has no safetensors weights (pickled ones are never
    fetched), or the Hub cannot be reached and the files are not cached.
    """

    unreachable = not constants.HF_HUB_OFFLINE and not hub_reachable()

    def fetch(filename: str) -> Path:
        return Path(
            hf_hub_download(
                repo.repo_id, filename, revision=repo.revision, cache_dir=cache_dir, local_files_only=unreachable
            )
        )

    try:
        folder = fetch(CONFIG_FILE).parent
        fetch(WEIGHTS_FILE)
    except RevisionNotFoundError as exc:
        raise ValueError(f"{repo}: the revision {repo.revision!r} does not exist.") from exc
    except RepositoryNotFoundError as exc:
        raise ValueError(f"{repo}: no such model repository on {constants.ENDPOINT} (or it is private).") from exc
    except (OfflineModeIsEnabled, FileNotFoundError) as exc:  # LocalEntryNotFoundError is a FileNotFoundError
        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} cannot be reached"
        raise ValueError(f"{repo}: {reason} and the files are not in the local cache.") from exc
    except EntryNotFoundError as exc:
        raise ValueError(
            f"{repo} has no {CONFIG_FILE} + {WEIGHTS_FILE} checkpoint (pickled weights are never loaded)."
        ) from exc
    except (OSError, ValueError) as exc:  # HTTP errors, timeouts, a full disk
        raise ValueError(f"{repo}: download failed: {exc}") from exc
    try:
        fetch(CARD_FILE)  # metrics for the model-card panel
    except (OSError, ValueError, EntryNotFoundError):  # the card is optional: a repo without one still loads
        pass
    return folder


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_reachable(endpoint: str | None = None, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's host opens within `timeout` seconds (True behind a proxy,
    which a direct probe cannot judge). Unreachable, huggingface_hub would retry each file for ~25 s;
    a cached file is then read from the cache at once, an uncached one is a plain error."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urllib.parse.urlsplit(endpoint or constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except (OSError, ValueError):
        return False


def save_atomic(model: PyTorchModelHubMixin, folder: str | Path, card: str | None = None) -> Path:
    """`save_pretrained` into a temporary folder, then move each file into `folder` with a rename.

    A kill at any moment leaves either the old or the new file under each name, never a half-written
    one, so the folder always loads. Files other than the config, weights and card are left alone.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        model.save_pretrained(tmp)
        if card is not None:
            (Path(tmp) / CARD_FILE).write_text(card, encoding="utf-8")
        elif (folder / CARD_FILE).exists():
            (Path(tmp) / CARD_FILE).unlink(missing_ok=True)  # keep the card already there
        # Config before weights: a loader never sees new weights with an old config.
        for name in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE):
            if (Path(tmp) / name).exists():
                _fsync(Path(tmp) / name)
                os.chmod(Path(tmp) / name, 0o644)
                os.replace(Path(tmp) / name, folder / name)
    return folder


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)  # temporary files are private (0600); results are ordinary files
    os.replace(handle.name, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


MIXIN_TAGS = ("model_hub_mixin", "pytorch_model_hub_mixin")  # added to every class by huggingface_hub


def card_tags(model_class: type) -> list[str]:
    """The Hub tags a model class declares (its `tags=` class keyword), for its model card: declared once."""
    return [tag for tag in model_class._hub_mixin_info.model_card_data.tags if tag not in MIXIN_TAGS]


def model_card(
    *,
    name: str,
    title: str,
    summary: str,
    tags: list[str],
    command: str,
    details: dict[str, Any],
    metrics: dict[str, float],
    load_snippet: str,
    sample_file: str | None = None,
) -> str:
    """A Hub model card: YAML metadata (`name` for the model index, library, tags, dataset, metrics) and a
    short body."""
    data = ModelCardData(
        model_name=name,
        library_name="genmodels",
        license="mit",
        tags=tags,
        datasets=["fashion_mnist"],
        metrics=sorted(metrics),
    )
    lines = [f"# {title}", "", summary, ""]
    if sample_file:
        lines += [f"![samples]({sample_file})", ""]
    lines += ["## Training", "", "```bash", command, "```", ""]
    lines += [f"- {key}: {value}" for key, value in details.items()]
    lines += ["", "## Training log (last epoch)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_format(value)} |" for key, value in metrics.items()]
    lines += ["", "## Use", "", "```python", load_snippet, "```"]
    body = "\n".join(lines) + "\n"
    return f"---\n{data.to_yaml()}\n---\n\n{body}"


EVALUATION_START, EVALUATION_END = "<!-- evaluation -->", "<!-- /evaluation -->"


def update_card_evaluation(folder: str | Path, task: str, metrics: dict[str, float], section: str) -> None:
    """Put evaluation results into a checkpoint's model card: `model-index` metadata and a body section.

    `metrics` maps a metric id to its value (e.g. {"fidc": 12.3}); `section` is Markdown that
    replaces any earlier evaluation section. Written atomically.
    """
    path = Path(folder) / CARD_FILE
    card = ModelCard.load(path) if path.exists() else ModelCard(f"---\n{ModelCardData().to_yaml()}\n---\n")
    card.data.model_name = card.data.model_name or Path(folder).name
    card.data.eval_results = [
        EvalResult(
            task_type=task,
            dataset_type="fashion_mnist",
            dataset_name="Fashion-MNIST",
            dataset_split="test",
            metric_type=key,
            metric_value=value,
            metric_name=METRIC_NAMES.get(key, key),
        )
        for key, value in metrics.items()
    ]
    body = card.text
    if EVALUATION_START in body and EVALUATION_END in body:
        before, rest = body.split(EVALUATION_START, 1)
        body = before + rest.split(EVALUATION_END, 1)[1].lstrip("\n")
    block = f"{EVALUATION_START}\n## Evaluation\n\n{section.strip()}\n{EVALUATION_END}\n\n"
    marker = "## Training"
    body = body.replace(marker, block + marker, 1) if marker in body else body.rstrip() + "\n\n" + block
    card.text = body
    write_atomic(path, str(card).encode("utf-8"))


def card_metrics(folder: str | Path) -> dict[str, float]:
    """The evaluation results recorded in a checkpoint's model card, by metric name ({} if none)."""
    path = Path(folder) / CARD_FILE
    if not path.exists():
        return {}
    try:
        results = ModelCard.load(path).data.eval_results or []
    except Exception:  # a card that is not valid YAML is shown without metrics, not fatal
        return {}
    return {result.metric_name or result.metric_type: result.metric_value for result in results}


METRIC_NAMES = {
    "fidc": "FIDc",
    "kidc": "KIDc",
    "precision": "precision",
    "recall": "recall",
    "is": "IS (classifier)",
    "class_match": "class match",
    "accuracy": "test accuracy",
    "psnr_db": "reconstruction PSNR (dB)",
}


def _format(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def push_folder(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Upload a checkpoint folder (config, weights, card, PNGs) to a Hub model repo; return the commit URL.

    Raises ValueError with a plain sentence for an invalid repo id, a folder without a checkpoint,
    no token, or a Hub that cannot be reached.
    """
    HubRepo.parse(repo_id)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE) if not (Path(folder) / name).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a complete checkpoint folder: {', '.join(missing)} missing.")
    token = token or get_token()
    if not token:
        raise ValueError("No Hugging Face token: run `hf auth login` or set $HF_TOKEN, then push again.")
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, "*.png"],
            commit_message="Upload checkpoint from genmodels",
        )
    except Exception as exc:  # network, auth, permissions: all end the same way for the user
        raise ValueError(f"Could not push {folder} to {repo_id}: {exc}") from exc
    return str(commit.commit_url)
