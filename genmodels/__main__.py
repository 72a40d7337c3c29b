"""Command line: `python -m genmodels --help`.

python -m genmodels sample --model dcgan --num 64 --seed 0 --out grid.png
python -m genmodels sample --model vae --num 16 --seed 3 --temperature 0.8 --out z.npy
python -m genmodels sample --model cgan --label Sneaker --num 64 --seed 0 --out sneakers.png
python -m genmodels sample --model flow --label Bag --steps 12 --guidance 3 --out bags.png
python -m genmodels sample --model flow --num 5000 --out flow.npy      # balanced over the ten classes
python -m genmodels sample --model flow --label any --num 64 --out any.png   # flow without a class
python -m genmodels evaluate [--models dcgan vae] [--num 10000] [--json]
python -m genmodels push --model dcgan --repo OWNER/NAME [--checkpoint FOLDER] [--private]
python -m genmodels models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from .data import CLASS_NAMES, class_index, to_uint8
from .device import DEVICE_CHOICES
from .images import save_images
from .registry import MODELS, generative_names, get_entry, load_model

SAMPLE_BATCH = 256  # images per forward pass: a flow batch of 256 at 6 steps holds ~0.3 GB of activations
MAX_SAMPLES = 100_000  # per command (as uint8, 78 MB)


def sample_labels(entry, label: str | None, num: int) -> torch.Tensor | None:
    """The class of each of `num` images: one class for all (--label), or for a conditional model without
    --label the ten classes in turn (image i is class i mod 10), balanced as an evaluation wants;
    None: no class (an unconditional model, or flow with --label any)."""
    if not entry.conditional:
        if label is not None:
            raise ValueError(f"--label applies to conditional models only; {entry.name} is unconditional.")
        return None
    if label is not None and label.strip().lower() == "any":
        if not entry.any_class:
            raise ValueError(f"{entry.name} draws one class at a time; --label any is for flow.")
        return None
    if label is not None:
        return torch.full((num,), class_index(label), dtype=torch.long)
    return torch.arange(num) % len(CLASS_NAMES)


def _sample(args: argparse.Namespace) -> None:
    """Draw images from a generative model, in batches, into a PNG grid or a .npy array."""
    entry = get_entry(args.model)
    knobs = {"truncation": args.truncation, "temperature": args.temperature, "guidance": args.guidance}
    kwargs = {name: value for name, value in knobs.items() if value is not None}
    for name in kwargs:
        if name != entry.sample_knob:
            raise ValueError(f"--{name} does not apply to {entry.name}; it takes --{entry.sample_knob}.")
    if args.steps is not None:
        if not entry.denoises:
            raise ValueError(f"--steps applies to the flow model only; {entry.name} draws in one pass.")
        kwargs["steps"] = args.steps
    if not 1 <= args.num <= MAX_SAMPLES:
        raise ValueError(f"--num must be between 1 and {MAX_SAMPLES}, got {args.num}.")
    labels = sample_labels(entry, args.label, args.num)
    model = load_model(entry.name, device=args.device, source=args.checkpoint)
    drawn = []  # uint8 batches: memory grows by 784 bytes per image, not by a batch's activations
    with tqdm(total=args.num, unit="image", desc=f"sampling {entry.name}", disable=args.num <= SAMPLE_BATCH) as bar:
        for start in range(0, args.num, SAMPLE_BATCH):
            count = min(SAMPLE_BATCH, args.num - start)
            if entry.conditional:  # (None: flow without a class)
                kwargs["label"] = None if labels is None else labels[start : start + count].to(model_device(model))
            drawn.append(to_uint8(model.sample(count, seed=args.seed + start, **kwargs)))
            bar.update(count)
    images = torch.cat(drawn).float()[:, None].div(127.5).sub(1.0)  # back to [-1, 1]: the same uint8 again
    path = save_images(images, args.out)
    classes = (
        ""
        if not entry.conditional
        else " of no class"
        if labels is None
        else f" of class {CLASS_NAMES[int(labels[0])]}"
        if args.label is not None
        else ", the ten classes in turn"
    )
    print(f"Wrote {args.num} {entry.name} samples{classes} (seeds {args.seed}..{args.seed + args.num - 1}) to {path}")


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _evaluate(args: argparse.Namespace) -> None:
    """Score every generative model against the test set, next to the floor and noise ceiling."""
    from .evaluate import (  # torchmetrics is slow to import; only here
        evaluate,
        markdown,
        update_cards,
    )

    report = evaluate(args.models, num=args.num, device=args.device, data_dir=args.data_dir)
    print(json.dumps(report) if args.json else markdown(report))
    if args.update_cards:
        for path in update_cards(report):
            print(f"Updated {path}", file=sys.stderr)


def _push(args: argparse.Namespace) -> None:
    """Upload a checkpoint folder (config, weights, model card, sample grid) to a Hub model repo."""
    from .hub import CARD_FILE, HubRepo, card_metrics, push_folder

    entry = get_entry(args.model)
    repo = HubRepo.parse(args.repo)
    if repo.revision:
        raise ValueError("--repo takes OWNER/NAME without @REVISION: a push creates a new commit on main.")
    folder = Path(args.checkpoint) if args.checkpoint else entry.checkpoint_path
    load_model(entry.name, source=folder)  # only a checkpoint that loads is pushed
    if not card_metrics(folder):
        print(
            f"warning: {folder / CARD_FILE} has no evaluation results; "
            "`python -m genmodels evaluate --update-cards` adds them.",
            file=sys.stderr,
        )
    url = push_folder(folder, repo.repo_id, private=args.private)
    print(f"Pushed {folder} to {url}")


def _models(args: argparse.Namespace) -> None:
    """List the registry: name, kind, bundled checkpoint and whether it is present."""
    for entry in MODELS.values():
        kind = "generative" if entry.generative else "encoder" if entry.inverts else "classifier"
        present = "ok" if (entry.checkpoint_path / "model.safetensors").is_file() else "missing"
        print(f"{entry.name:12s} {kind:11s} {entry.checkpoint_path} [{present}]  {entry.description}")


def build_parser() -> argparse.ArgumentParser:
    """The `python -m genmodels` parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog="python -m genmodels", description="Generative models of Fashion-MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = commands.add_parser("sample", help="draw images from a generative model into a PNG grid or .npy")
    sample.add_argument("--model", required=True, choices=generative_names(), help="generative model to sample")
    sample.add_argument("--num", type=int, default=64, help="number of images")
    sample.add_argument("--seed", type=int, default=0, help="image i uses seed SEED+i")
    sample.add_argument("--out", required=True, help="output path: .png (grid) or .npy (uint8, N x 28 x 28)")
    sample.add_argument("--truncation", type=float, default=None, help="GAN: redraw |z| above this value")
    sample.add_argument("--temperature", type=float, default=None, help="VAE: scale prior draws (default 1)")
    sample.add_argument("--steps", type=int, default=None, help="flow: ODE steps (default: the checkpoint's)")
    sample.add_argument(
        "--guidance", type=float, default=None, help="flow: classifier-free guidance (default: the checkpoint's)"
    )
    sample.add_argument(
        "--label",
        default=None,
        help="conditional models: class index 0-9 or name, e.g. Sneaker (default: the ten in turn; flow: any = none)",
    )
    sample.add_argument("--device", default="cpu", choices=DEVICE_CHOICES, help="where to run the model")
    sample.add_argument("--checkpoint", default=None, help="checkpoint folder instead of the bundled one")
    sample.set_defaults(func=_sample)

    evaluation = commands.add_parser("evaluate", help="FIDc, KIDc, precision, recall and IS of every model")
    evaluation.add_argument("--models", nargs="+", default=None, choices=generative_names(), help="default: all")
    evaluation.add_argument("--num", type=int, default=10_000, help="samples per set")
    evaluation.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    evaluation.add_argument("--device", default="cpu", choices=DEVICE_CHOICES, help="where to run the models")
    evaluation.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    evaluation.add_argument("--update-cards", action="store_true", help="write the numbers into the model cards")
    evaluation.set_defaults(func=_evaluate)

    push = commands.add_parser("push", help="upload a checkpoint and its model card to the Hugging Face Hub")
    push.add_argument("--model", required=True, choices=list(MODELS), help="model family of the checkpoint")
    push.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repo (created if missing)")
    push.add_argument("--checkpoint", default=None, help="checkpoint folder instead of the bundled one")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.set_defaults(func=_push)

    models = commands.add_parser("models", help="list the models in the registry")
    models.set_defaults(func=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with torch.inference_mode():
            args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
