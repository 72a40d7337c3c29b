"""Load: many concurrent gradio_client sessions over every endpoint against one `python app.py` server.

    python -m benchmarks.bench_load                          # 32 clients, 2,000 requests, every endpoint
    python -m benchmarks.bench_load --clients 8 --requests 200
    python -m benchmarks.bench_load --mix standard --requests 960   # 32 users x 30: generate, roundtrip, interpolate

The standard mix is what a crowd sends: generate, roundtrip with one shared example image, and
interpolate, each client downloading the files it gets back (as a browser does).

The server runs as its own process (the command a user runs), so its resident memory is measured
alone: after a warm-up round, and after the load. Each client is a separate `gradio_client.Client`
(its own session) in its own thread, cycling through the endpoints from a different starting point;
uploads are real file uploads. The clients talk plain HTTP to 127.0.0.1, so they are made with
`ssl_verify=False`: otherwise gradio_client builds an SSL context (loading the whole CA bundle) for
every request, about 55 ms of the load generator's CPU per request on the cores the server needs.
Prints errors, median and 95th-percentile latency overall and per
endpoint, throughput and the server's memory. Targets on a 2-core machine: 32 clients, 2,000
requests, zero errors, p95 under 2 s, resident memory growing less than 150 MB.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "genmodels" / "examples").glob("*.png"))


STANDARD_MIX = ("generate", "roundtrip", "interpolate")


def calls(client: Client, mix: str = "all") -> list[tuple[str, callable]]:
    """One call per endpoint, with arguments a user would send (inversion: the VAE's encoder; GAN
    inversion is an optimisation of about a second, measured by bench_inversion instead)."""
    image = handle_file(str(EXAMPLES[0]))
    mask = handle_file(str(mask_file()))
    every = [
        ("generate", lambda seed: client.predict(model="dcgan", seed=seed, num=16, api_name="/generate")),
        ("roundtrip", lambda seed: client.predict(image=image, seed=seed, api_name="/roundtrip")),
        (
            "interpolate",
            lambda seed: client.predict(model="vae", seed_a=seed, seed_b=seed + 1, steps=8, api_name="/interpolate"),
        ),
        ("edit", lambda seed: client.predict(image=image, angle=seed % 90, api_name="/edit")),
        (
            "generate cgan",
            lambda seed: client.predict(model="cgan", seed=seed, num=8, label="Bag", api_name="/generate"),
        ),
        ("settings", lambda seed: client.predict(model="vae", seed=seed, num=4, api_name="/settings")),
        ("invert", lambda seed: client.predict(image=image, model="vae", api_name="/invert")),
        (
            "move",
            lambda seed: client.predict(model="vae", seed=seed, target="Bag", amount=2.0, pc1=1.0, api_name="/move"),
        ),
        (
            "arithmetic",
            lambda seed: client.predict(
                model="dcgan", a="Sneaker", b="Sandal", c=f"seed {seed}", api_name="/arithmetic"
            ),
        ),
        ("keyframes", lambda seed: client.predict(model="vae", keys=f"seed {seed}, Bag, Coat", api_name="/keyframes")),
        ("inpaint", lambda seed: client.predict(image=image, mask=mask, model="vae", api_name="/inpaint")),
        ("map_point", lambda seed: client.predict(x=seed % 7 - 3.0, y=1.0, api_name="/map_point")),
        ("ping", lambda seed: client.predict(api_name="/ping")),
    ]
    return [(name, call) for name, call in every if mix == "all" or name in STANDARD_MIX]


def local_client(url: str, download: bool = False) -> Client:
    """A gradio_client session for a server on this machine (plain HTTP: no certificates to load)."""
    return Client(url, verbose=False, download_files=download, ssl_verify=False)


def mask_file() -> Path:
    """A 28x28 PNG mask whose right half is white (regenerate that half), written once."""
    path = Path(tempfile.gettempdir()) / "genmodels-bench-mask.png"
    if not path.exists():
        mask = np.zeros((28, 28), np.uint8)
        mask[:, 14:] = 255
        Image.fromarray(mask).save(path)
    return path


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # seconds
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client_loop(url: str, index: int, count: int, results: Results, mix: str = "all") -> None:
    """One session: `count` requests, cycling through the endpoints of `mix` from `index`."""
    try:
        client = local_client(url, download=mix == "standard")
    except Exception as exc:  # the session itself failed: every request it would have sent is an error
        with results.lock:
            results.errors.extend([f"connect: {exc!r}"] * count)
        return
    endpoints = calls(client, mix)
    for i in range(count):
        name, call = endpoints[(index + i) % len(endpoints)]
        start = time.perf_counter()
        try:
            call(index * 1000 + i)
        except Exception as exc:
            with results.lock:
                results.errors.append(f"{name}: {exc!r}")
            continue
        with results.lock:
            results.latencies[name].append(time.perf_counter() - start)


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(
    port: int, flags: tuple[str, ...] = (), env: dict | None = None, cwd: Path = ROOT, output=subprocess.DEVNULL
) -> subprocess.Popen:
    """`python app.py --port PORT FLAGS` in its own process (run from `cwd`); returns once it answers."""
    env = {**(os.environ if env is None else env), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "app.py", "--port", str(port), "--device", "cpu", *flags]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the app exited during start-up") from None
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the app did not start in 2 minutes")


def wait_idle(pid: int, quiet_s: float = 2.0, most_s: float = 300.0) -> None:
    """Return once process `pid` has used under 20% of a core for `quiet_s` seconds (its warm-up done:
    the studio's directions take about a minute of CPU on a first start, a moment when cached)."""
    deadline = time.monotonic() + most_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(quiet_s)
        if cpu_seconds(pid) - before < 0.2 * quiet_s:
            return
    raise RuntimeError(f"the app was still busy after {most_s:.0f} s")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def run_load(clients: int, requests: int, mix: str = "all") -> dict:
    """Start a server, warm it up, drive the load, and return the measurements."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(port)
    try:
        wait_idle(server.pid)
        warm = Results()
        client_loop(url, 0, len(calls(local_client(url), mix)), warm, mix)  # every endpoint once
        memory_before, cpu_before = rss_mb(server.pid), cpu_seconds(server.pid)
        results = Results()
        share, extra = divmod(requests, clients)
        threads = [
            threading.Thread(target=client_loop, args=(url, i, share + (i < extra), results, mix))
            for i in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        memory_after, cpu_after = rss_mb(server.pid), cpu_seconds(server.pid)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)
    every = [latency for values in results.latencies.values() for latency in values]
    return {
        "clients": clients,
        "requests": requests,
        "completed": len(every),
        "errors": results.errors,
        "median_s": statistics.median(every) if every else float("nan"),
        "p95_s": p95(every) if every else float("nan"),
        "per_endpoint": {name: (statistics.median(v), p95(v), len(v)) for name, v in results.latencies.items()},
        "seconds": elapsed,
        "rss_before_mb": memory_before,
        "rss_after_mb": memory_after,
        "server_alive": alive,
        "server_cpu_s": cpu_after - cpu_before,
    }


def elapsed_share(report: dict) -> float:
    """CPU seconds both cores offer over the run."""
    return report["seconds"] * (os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent gradio_client sessions")
    parser.add_argument("--requests", type=int, default=2000, help="requests in total")
    parser.add_argument(
        "--mix", choices=("all", "standard"), default="all", help="every endpoint, or generate/roundtrip/interpolate"
    )
    args = parser.parse_args()
    report = run_load(args.clients, args.requests, args.mix)
    print(
        f"{report['clients']} clients, {report['requests']} requests in {report['seconds']:.1f} s "
        f"({report['completed'] / report['seconds']:.1f} requests/s)\n"
    )
    print("| endpoint | requests | median s | p95 s |\n|---|---|---|---|")
    for name, (median, high, count) in sorted(report["per_endpoint"].items()):
        print(f"| {name} | {count} | {median:.3f} | {high:.3f} |")
    print(f"| **all** | {report['completed']} | {report['median_s']:.3f} | {report['p95_s']:.3f} |\n")
    growth = report["rss_after_mb"] - report["rss_before_mb"]
    print(
        f"server CPU: {report['server_cpu_s']:.1f} s ({report['server_cpu_s'] / elapsed_share(report):.0%} of both cores), "
        f"{report['server_cpu_s'] / max(1, report['completed']) * 1000:.0f} ms per request; the clients use the rest"
    )
    print(f"errors: {len(report['errors'])}" + "".join(f"\n  {error}" for error in report["errors"][:10]))
    print(
        f"server resident memory: {report['rss_before_mb']:.0f} MB -> {report['rss_after_mb']:.0f} MB "
        f"({growth:+.0f} MB); server alive: {report['server_alive']}"
    )
    print(
        f"targets: zero errors {'met' if not report['errors'] else 'NOT met'}, "
        f"p95 < 2 s {'met' if report['p95_s'] < 2 else 'NOT met'} "
        f"(every endpoint: {'met' if all(high < 2 for _, high, _ in report['per_endpoint'].values()) else 'NOT met'}), "
        f"memory growth < 150 MB {'met' if growth < 150 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
