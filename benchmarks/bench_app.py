"""Speed of the app: each endpoint's gradio_client round trip next to a no-op's, on one server.

    python -m benchmarks.bench_app                # 40 calls per endpoint
    python -m benchmarks.bench_app --calls 100

Prints a Markdown table: median and 95th percentile round trip per endpoint, its ratio to the
no-op endpoint measured in the same run, and the backend-only times of a 64-image DCGAN batch and of
16 flow images at the checkpoint's default steps and guidance (the flow target: 16 images within 1 s
through /generate; flow's /invert of one image within 1 s), and the flow's editing actions (realize,
inpaint, the streamed denoise, guidance side by side). The server computes with the threads `python app.py` uses (`--threads`' default).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gradio_client import handle_file
from PIL import Image

import app
from benchmarks.bench_load import local_client
from genmodels.data import CLASS_NAMES, EXAMPLES_DIR
from ui.serving import default_threads


def p95(values: list[float]) -> float:
    """95th percentile (inclusive method: within the observed range)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def time_calls(fn, calls: int, warmup: int = 3) -> list[float]:
    """Wall times in milliseconds of `calls` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def backend_generate_ms(calls: int) -> list[float]:
    """The DCGAN's 64-image batch alone: seeds to latents to images, no server, no encoding."""
    generator = app.lab.model("dcgan")
    return time_calls(lambda: generator.sample(64, seed=0), calls, warmup=5)


def backend_flow_ms(calls: int) -> list[float]:
    """16 flow images of one class at the checkpoint's defaults, no server, no encoding."""
    flow = app.lab.model("flow")
    return time_calls(lambda: flow.sample(16, seed=0, label="Sneaker"), calls, warmup=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="timed calls per endpoint")
    args = parser.parse_args()
    torch.set_num_threads(default_threads())  # as app.main() does

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_OPTIONS
    )
    client = local_client(f"http://127.0.0.1:{port}/")
    example_path = sorted(EXAMPLES_DIR.glob("*.png"))[0]  # test_NNNNN_<class>.png
    example, example_class = handle_file(str(example_path)), int(example_path.stem.rsplit("_", 1)[1])
    mask_path = Path(tempfile.mkdtemp()) / "right-half.png"
    Image.fromarray(np.tile(np.repeat(np.array([0, 255], np.uint8), 14), (28, 1))).save(mask_path)
    mask = handle_file(str(mask_path))
    endpoints = {
        "ping (no-op)": lambda: client.predict(api_name="/ping"),
        "generate dcgan x16": lambda: client.predict(model="dcgan", seed=0, num=16, api_name="/generate"),
        "generate vae x16": lambda: client.predict(model="vae", seed=0, num=16, api_name="/generate"),
        "generate flow x16 (defaults)": lambda: client.predict(
            model="flow", seed=0, num=16, label="Sneaker", api_name="/generate"
        ),
        "invert flow (the example, its class)": lambda: client.predict(
            image=example, model="flow", label=CLASS_NAMES[example_class], api_name="/invert"
        ),
        "roundtrip": lambda: client.predict(image=example, api_name="/roundtrip"),
        "interpolate x8": lambda: client.predict(model="dcgan", seed_a=0, seed_b=1, steps=8, api_name="/interpolate"),
        "edit": lambda: client.predict(image=example, angle=30, api_name="/edit"),
        "realize (the example, default strength)": lambda: client.predict(image=example, api_name="/realize"),
        "inpaint flow (the example, right half)": lambda: client.predict(
            image=example, mask=mask, model="flow", label="any class", api_name="/inpaint"
        ),
        "denoise (6 steps, streamed)": lambda: client.predict(seed=0, label="Sneaker", api_name="/denoise"),
        "compare_guidance": lambda: client.predict(seed=0, label="Sneaker", api_name="/compare_guidance"),
    }
    results = {name: time_calls(call, args.calls) for name, call in endpoints.items()}
    app.demo.close()

    noop = statistics.median(results["ping (no-op)"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {app.lab.device}, {args.calls} calls each\n"
    )
    print("| endpoint | median ms | p95 ms | median / no-op |")
    print("|---|---|---|---|")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"| {name} | {median:.1f} | {p95(times):.1f} | {median / noop:.2f}x |")
    backend = backend_generate_ms(max(args.calls, 50))
    print(f"\nBackend only, DCGAN 64 images: median {statistics.median(backend):.1f} ms, p95 {p95(backend):.1f} ms")
    flow = backend_flow_ms(max(args.calls // 2, 10))
    print(f"Backend only, flow 16 images: median {statistics.median(flow):.1f} ms, p95 {p95(flow):.1f} ms")


if __name__ == "__main__":
    main()
