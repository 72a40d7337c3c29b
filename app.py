"""Latent Lab: explore the latent spaces of small generative models of Fashion-MNIST in a browser.

    python app.py                          # http://127.0.0.1:7860, bundled checkpoints, best device
    python app.py --device cpu --port 8000
    python app.py --share                  # also a public *.gradio.live link
    python app.py --hub-repo dcgan=OWNER/NAME@REVISION   # a checkpoint from the Hugging Face Hub
    python app.py --train-slots 2 --train-max-minutes 5  # the Train tab's limits (--no-train: no tab)

On a Space, set GENMODELS_HUB_REPOS="dcgan=OWNER/NAME@REVISION vae=..." instead of --hub-repo, and
GENMODELS_NO_TRAIN=1 to leave the Train tab out of a busy public Space.

This file is the entry point only: arguments, the lab, the launch. The page is the `ui` package (one
module per tab) and every computation lives in `genmodels` (`genmodels.lab.Lab` for the actions).
`from app import demo` (a Space, `gradio app.py`, the tests) builds the page once, on first use, from
the environment's GENMODELS_DEVICE and GENMODELS_HUB_REPOS.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import threading

import gradio as gr
import torch

from genmodels.device import DEVICE_CHOICES
from genmodels.lab import Lab
from genmodels.registry import parse_model_repos
from training.jobs import MAX_MINUTES, SLOTS
from ui.page import build_demo
from ui.serving import LAUNCH_OPTIONS, default_threads, release_freed_memory, set_environment, trim_when_idle

logger = logging.getLogger("app")

_built: dict[str, object] = {}  # "lab" and "demo", made by the first `app.demo` or by main()
_build_lock = threading.Lock()


def build(
    device: str, repos: str | list[str], training: dict | None = None, fast_file_checks: bool = False
) -> tuple[Lab, gr.Blocks]:
    """The lab on `device` with the Hub checkpoints `repos`, and its page (with the Train tab's limits
    `training`, or none)."""
    lab = Lab.from_specs(device, repos)
    _built.update(lab=lab, demo=build_demo(lab, training=training, fast_file_checks=fast_file_checks))
    return lab, _built["demo"]


def training_limits(no_train: bool, slots: int = SLOTS, max_minutes: float = MAX_MINUTES) -> dict | None:
    """The Train tab's limits, or None for no tab."""
    return None if no_train else {"slots": slots, "max_minutes": max_minutes}


def __getattr__(name: str):
    """`app.demo` and `app.lab`, built from the environment on first use (PEP 562)."""
    if name not in ("demo", "lab"):
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    with _build_lock:
        if not _built:
            build(
                os.environ.get("GENMODELS_DEVICE", "auto"),
                os.environ.get("GENMODELS_HUB_REPOS", ""),
                training_limits(os.environ.get("GENMODELS_NO_TRAIN") == "1"),
            )
    return _built[name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; host and port default to Gradio's own variables, which a Space sets."""
    parser = argparse.ArgumentParser(description="Run the Latent Lab web app.")
    host, port = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    parser.add_argument("--host", default=host, help="interface to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=port, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument(
        "--no-mcp", action="store_true", help="do not serve the actions as MCP tools (/gradio_api/mcp/)"
    )
    parser.add_argument(
        "--device",
        default=os.environ.get("GENMODELS_DEVICE", "auto"),
        choices=DEVICE_CHOICES,
        help="where the models run",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="CPU threads per request (default: the cores shared among the requests computed at once)",
    )
    parser.add_argument(
        "--hub-repo",
        action="append",
        default=[],
        metavar="MODEL=OWNER/NAME[@REVISION]",
        help="load MODEL from this Hub repo (repeatable); falls back to the bundled checkpoint",
    )
    parser.add_argument(
        "--train-slots", type=int, default=SLOTS, help="Train tab: training runs at once (the others wait in line)"
    )
    parser.add_argument(
        "--train-max-minutes", type=float, default=MAX_MINUTES, help="Train tab: the longest time budget of a run"
    )
    parser.add_argument("--no-train", action="store_true", help="leave the Train tab out (a busy public server)")
    parser.add_argument(
        "--fast-file-checks",
        action="store_true",
        help="replace Gradio's file-access checks by faster ones with the same answers (docs/serving.md)",
    )
    args = parser.parse_args(argv)
    if args.train_slots < 1:
        parser.error("--train-slots must be at least 1")
    if not 0.25 <= args.train_max_minutes <= 24 * 60:
        parser.error("--train-max-minutes must be between 0.25 and 1440")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        parse_model_repos(args.hub_repo)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> None:
    """Build the lab and the page once, warm the studio in the background, and serve."""
    release_freed_memory()
    set_environment()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Requests run side by side, each on its share of the cores (docs/serving.md).
    torch.set_num_threads(args.threads)
    repos = " ".join([os.environ.get("GENMODELS_HUB_REPOS", ""), *args.hub_repo])
    no_train = args.no_train or os.environ.get("GENMODELS_NO_TRAIN") == "1"
    limits = training_limits(no_train, args.train_slots, args.train_max_minutes)
    lab, demo = build(args.device, repos, limits, args.fast_file_checks)
    logger.info("Models on %s: %s", lab.device, ", ".join(lab.models))
    warming = threading.Thread(target=lab.warm_up, name="warm-up", daemon=True)
    warming.start()
    options = {**LAUNCH_OPTIONS, "mcp_server": not args.no_mcp}
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True, **options)
    # The ~400,000 objects of torch, Gradio, the page and its server live as long as the app: leave them out
    # of the garbage collector's full passes, which hold the GIL (under the standard load, about 15 a
    # minute: 170 ms each before, 90 ms after).
    gc.collect()
    gc.freeze()
    trim_when_idle(after=warming)
    if args.share and demo.share_url:
        logger.info("Public link (anyone with it can use this app while it runs): %s", demo.share_url)
    elif args.share:
        logger.warning(
            "No public link: the tunnel to gradio.live could not be made (no internet, or a firewall in the way). "
            "The app is served locally only, at %s. To share it, deploy it as a Hugging Face Space "
            "(README: Deploy as a Space) or run it with --host 0.0.0.0 on a machine others can reach.",
            demo.local_url,
        )
    demo.block_thread()


if __name__ == "__main__":
    main()
