"""The one list of model families and their bundled checkpoints.

The app, the CLI and the tests loop over `MODELS`; adding a family means adding one entry here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .cgan import CGANConfig, ConditionalGenerator
from .classifier import Classifier, ClassifierConfig
from .dcgan import DCGANConfig, Generator
from .device import resolve_device
from .encoder import Encoder, EncoderConfig
from .flow import FlowConfig, FlowModel
from .hub import PICKLE_SUFFIXES, HubRepo
from .limits import REFINE_ITERATIONS
from .vae import VAE, VAEConfig

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


@dataclass(frozen=True)
class ModelEntry:
    name: str  # short name used on the command line, in the app and in API calls
    model_class: type[nn.Module]  # the family's nn.Module (with the Hub mixin)
    config_class: type  # its config dataclass
    checkpoint: str  # folder name of the bundled checkpoint under checkpoints/
    generative: bool  # has latent_dim, decode(z, label=None) and sample(num, seed, label=None, ...)
    conditional: bool  # the label picks the class (unconditional families ignore it)
    encoder: bool  # has encode(x) -> (mu, logvar), an amortised posterior (round trips, image endpoints)
    ode: bool  # samples by integrating an ODE: has encode(x, label) -> z, the same ODE run backwards
    sample_knob: str | None  # keyword of `sample` that trades variety for quality
    description: str  # one line for pickers and model cards
    inverts: str | None = None  # an encoder: the generator whose latent it guesses (GAN inversion)
    refine_iterations: int = REFINE_ITERATIONS  # an encoder: L-BFGS iterations refining its guess (per generator)

    @property
    def any_class(self) -> bool:
        """Whether a conditional family also samples without a class (flow, trained with the class dropped
        a share of the time): its pickers offer "any class", and the studio's directions apply to it."""
        return self.conditional and self.ode

    @property
    def denoises(self) -> bool:
        """Whether the family draws from noise in solver steps (flow): it takes steps and guidance, and
        realizes (SDEdit), denoises and inpaints (RePaint) by itself, where the others invert."""
        return self.ode

    @property
    def invertible(self) -> bool:
        """Whether the family answers invert(x, label) -> z by itself (an encoder, or its ODE backwards);
        a GAN's latent is found by optimisation instead (genmodels.studio.inversion_steps)."""
        return self.encoder or self.ode

    @property
    def checkpoint_path(self) -> Path:
        return CHECKPOINT_DIR / self.checkpoint


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="dcgan",
            model_class=Generator,
            config_class=DCGANConfig,
            checkpoint="dcgan-fashion",
            generative=True,
            conditional=False,
            encoder=False,
            ode=False,
            sample_knob="truncation",
            description="DCGAN generator: z ~ N(0, I) -> image, trained adversarially",
        ),
        ModelEntry(
            name="vae",
            model_class=VAE,
            config_class=VAEConfig,
            checkpoint="vae-fashion",
            generative=True,
            conditional=False,
            encoder=True,
            ode=False,
            sample_knob="temperature",
            description="Convolutional VAE: encoder to N(mu, sigma^2), decoder back, trained on the ELBO",
        ),
        ModelEntry(
            name="cgan",
            model_class=ConditionalGenerator,
            config_class=CGANConfig,
            checkpoint="cgan-fashion",
            generative=True,
            conditional=True,
            encoder=False,
            ode=False,
            sample_knob="truncation",
            description="Class-conditional GAN: pick a class, the seed picks the item",
        ),
        ModelEntry(
            name="flow",
            model_class=FlowModel,
            config_class=FlowConfig,
            checkpoint="flow-fashion",
            generative=True,
            conditional=True,
            encoder=False,
            ode=True,
            sample_knob="guidance",
            description="Flow matching (a diffusion model): the seed's noise flows to an image along an ODE; "
            "any class or a chosen one",
        ),
        ModelEntry(
            name="dcgan-encoder",
            model_class=Encoder,
            config_class=EncoderConfig,
            checkpoint="dcgan-encoder-fashion",
            generative=False,
            conditional=False,
            encoder=False,
            ode=False,
            sample_knob=None,
            description="Encoder image -> the DCGAN's z: the first guess of GAN inversion, refined by L-BFGS",
            inverts="dcgan",
        ),
        ModelEntry(
            name="cgan-encoder",
            model_class=Encoder,
            config_class=EncoderConfig,
            checkpoint="cgan-encoder-fashion",
            generative=False,
            conditional=True,
            encoder=False,
            ode=False,
            sample_knob=None,
            description="Encoder image + class -> the cGAN's z: the first guess of GAN inversion, refined by L-BFGS",
            inverts="cgan",
            refine_iterations=90,  # a median 21.8 dB at 70, 22.0 at 90, 22.2 at 100 (docs/results.md)
        ),
        ModelEntry(
            name="classifier",
            model_class=Classifier,
            config_class=ClassifierConfig,
            checkpoint="classifier-fashion",
            generative=False,
            conditional=False,
            encoder=False,
            ode=False,
            sample_knob=None,
            description="CNN classifier: labels and the penultimate features behind the quality metrics",
        ),
    )
}


# Checkpoints of the plain recipes the bundled models are measured against (benchmarks/bench_quality.py):
# {label: (family, folder)}. Trained by the same scripts; see each folder's model card for the command.
BASELINES: dict[str, tuple[str, Path]] = {
    "dcgan-plain": ("dcgan", CHECKPOINT_DIR / "baselines" / "dcgan-plain"),
    "vae-plain": ("vae", CHECKPOINT_DIR / "baselines" / "vae-plain"),
}


YOURS_PREFIX = "yours-"  # a model a user trained or brought: "yours-<family>-<id>", for that session only
TRAINABLE = ("vae", "dcgan", "flow")  # families the app trains and loads from users


def family_of(name: str) -> str:
    """The registry family of a model name: the name itself, or the family inside a "yours-<family>-<id>"."""
    if isinstance(name, str) and name.startswith(YOURS_PREFIX):
        family = name[len(YOURS_PREFIX) :].rsplit("-", 1)[0]
        if family in MODELS:
            return family
    return name


def entry_of(name: str | None) -> ModelEntry | None:
    """The registry entry of a bundled model's name or a user's (`yours-<family>-<id>`); None if unknown."""
    return MODELS.get(family_of(name)) if isinstance(name, str) else None


def get_entry(name: str) -> ModelEntry:
    """The registry entry for `name`, or a ValueError listing the known names."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name]


def latent_encoder_name(generator: str) -> str | None:
    """The registry name of the encoder that guesses `generator`'s latent, if there is one."""
    return next((name for name, entry in MODELS.items() if entry.inverts == generator), None)


def refine_iterations(generator: str) -> int:
    """L-BFGS iterations that refine the guess of `generator`'s encoder (the default without one)."""
    encoder = latent_encoder_name(generator)
    return MODELS[encoder].refine_iterations if encoder else REFINE_ITERATIONS


def generative_names() -> list[str]:
    """Names of the families that can generate images."""
    return [name for name, entry in MODELS.items() if entry.generative]


def load_model(name: str, device: str | torch.device = "cpu", source: str | Path | None = None) -> nn.Module:
    """Load model `name` in eval mode on `device`, from `source` (folder) or its bundled checkpoint."""
    entry = get_entry(name)
    folder = Path(source) if source is not None else entry.checkpoint_path
    if not folder.is_dir():
        raise ValueError(f"Checkpoint folder {folder} for model {name!r} does not exist.")
    device = resolve_device(device)
    config = {}
    if entry.ode and (folder / "config.json").is_file():  # one written before "sampling" had its own object
        config["config"] = read_flow_config(folder / "config.json")
    return entry.model_class.from_pretrained(str(folder), map_location=str(device), **config)


def read_flow_config(path: Path):
    """A flow checkpoint's config.json as today's FlowConfig (`flow.upgraded_config`), or a ValueError."""
    from .flow import FlowConfig, upgraded_config

    try:
        config = upgraded_config(json.loads(path.read_text(encoding="utf-8")))
        return FlowConfig(**{name: value for name, value in config.items() if name in FlowConfig.__dataclass_fields__})
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path.name} is not a flow model's config ({exc}).") from exc


def parse_model_repos(specs: str | list[str]) -> dict[str, HubRepo]:
    """`["dcgan=OWNER/NAME@REVISION", ...]` (or one string, separated by spaces or commas) -> {name: repo}.

    Raises a ValueError naming the bad entry: an unknown model name or an invalid repo id or revision.
    """
    if isinstance(specs, str):
        specs = specs.replace(",", " ").split()
    repos = {}
    for spec in specs:
        name, sep, repo = spec.partition("=")
        if not sep:
            raise ValueError(f"{spec!r}: write MODEL=OWNER/NAME[@REVISION], e.g. dcgan=me/dcgan-fashion@v1.")
        repos[get_entry(name.strip()).name] = HubRepo.parse(repo)
    return repos


MAX_USER_CHECKPOINT_BYTES = 64 * 2**20  # a user's model.safetensors (the bundled ones are under 16 MB)
USER_CHECKPOINT_FILES = ("config.json", "model.safetensors", "README.md", "samples.png")


def family_of_config(config: dict) -> str:
    """The trainable family whose config has exactly these fields, or a ValueError naming the families."""
    if not isinstance(config, dict):
        raise ValueError("config.json must hold a JSON object of the model's settings.")
    from .flow import upgraded_config

    config = upgraded_config(config)  # a flow's from before "sampling" had its own object, as today's
    for family in TRAINABLE:
        names = {field.name for field in dataclasses.fields(MODELS[family].config_class)}
        if set(config) == names:
            return family
    raise ValueError(
        "config.json matches none of the families the lab loads from users "
        f"({', '.join(TRAINABLE)}): it has {', '.join(sorted(map(str, config))) or 'no fields'}."
    )


def check_user_checkpoint(folder: str | Path) -> str:
    """Check a user's checkpoint folder (config of a trainable family, safetensors weights within the size
    limit); return its family, or a ValueError with a sentence."""
    folder = Path(folder)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise ValueError("A checkpoint needs config.json and model.safetensors (pickled weights are never loaded).")
    if weights.stat().st_size > MAX_USER_CHECKPOINT_BYTES:
        raise ValueError(f"model.safetensors is over {MAX_USER_CHECKPOINT_BYTES // 2**20} MB.")
    if config_path.stat().st_size > 64 * 1024:
        raise ValueError("config.json is over 64 KB: not a model config.")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config.json is not valid JSON ({exc}).") from exc
    return family_of_config(config)


def unpack_user_checkpoint(archive_path: str | Path, folder: str | Path) -> Path:
    """Extract a checkpoint .zip (its config.json, model.safetensors and optional card and grid, at its top
    or in one folder) into `folder`, refusing pickles, other files, unsafe paths and oversized entries."""
    import zipfile

    from .pictures import safe_zip_entries

    folder = Path(folder)
    try:
        with zipfile.ZipFile(archive_path) as archive:
            entries = safe_zip_entries(archive)
            if not entries:
                raise ValueError("The zip is empty: it should hold config.json and model.safetensors.")
            by_name: dict[str, zipfile.ZipInfo] = {}
            for info in entries:
                name = Path(info.filename).name
                if name.endswith(PICKLE_SUFFIXES):
                    raise ValueError(
                        f"The zip holds {name}, pickled weights, which are never loaded; "
                        "save the model with safetensors (save_pretrained does)."
                    )
                if name in USER_CHECKPOINT_FILES and info.filename.count("/") <= 1:
                    if name in by_name:
                        raise ValueError(f"The zip holds more than one {name}.")
                    by_name[name] = info
            folder.mkdir(parents=True, exist_ok=True)
            for name, info in by_name.items():
                limit = MAX_USER_CHECKPOINT_BYTES if name == "model.safetensors" else 2**20
                with archive.open(info) as source:
                    data = source.read(limit + 1)
                if len(data) > limit:
                    raise ValueError(f"{name} is over {limit // 2**20} MB.")
                (folder / name).write_bytes(data)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"The file is not a readable zip ({exc}).") from exc
    return folder
