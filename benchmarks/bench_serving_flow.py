"""The flow's /generate through the app against the same call in Python, at the same thread count.

    python -m benchmarks.bench_serving_flow               # 20 calls each
    python -m benchmarks.bench_serving_flow --calls 50 --num 16

A server started as the README says (`python app.py`, its own process, waited on until idle) is
called through gradio_client with model="flow" and everything else at the endpoint's defaults (16
images, the checkpoint's steps and guidance), downloading the grid as a user's client does. For each
call: the client's round trip, the server's CPU time and its minor page faults (from /proc). Then, the
server gone, the same 16 images from `Lab.generate` in this process on the threads the server computes
each request with (`--threads`' default). Target (issue 32): the round trip's median within 1.15x of
the backend's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.bench_load import cpu_seconds, free_port, local_client, p95, start_server, wait_idle
from genmodels.data import CLASS_NAMES
from ui.serving import default_threads


def minor_faults(pid: int) -> int:
    """Minor page faults of process `pid` so far (Linux)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def through_app(calls: int, num: int) -> dict[str, list[float]]:
    port = free_port()
    server = start_server(port)
    try:
        wait_idle(server.pid)
        client = local_client(f"http://127.0.0.1:{port}/", download=True)
        for seed in range(3):  # warm-up: the worker threads' first requests
            client.predict(model="flow", seed=seed, num=num, api_name="/generate")
        measured = {"round trip (s)": [], "server CPU (s)": [], "server page faults": []}
        for seed in range(calls):
            cpu, faults, started = cpu_seconds(server.pid), minor_faults(server.pid), time.perf_counter()
            client.predict(model="flow", seed=seed, num=num, api_name="/generate")
            measured["round trip (s)"].append(time.perf_counter() - started)
            measured["server CPU (s)"].append(cpu_seconds(server.pid) - cpu)
            measured["server page faults"].append(minor_faults(server.pid) - faults)
        return measured
    finally:
        server.kill()
        server.wait()


def in_python(calls: int, num: int) -> list[float]:
    from genmodels.lab import Lab

    torch.set_num_threads(default_threads())
    lab = Lab("cpu")
    for seed in range(3):
        lab.generate("flow", seed, num, label=CLASS_NAMES[0])
    seconds = []
    for seed in range(calls):
        started = time.perf_counter()
        lab.generate("flow", seed, num, label=CLASS_NAMES[0])  # the endpoint's default class
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="timed calls each way")
    parser.add_argument("--num", type=int, default=16, help="images per call (the endpoint's default: 16)")
    args = parser.parse_args()

    app = through_app(args.calls, args.num)
    backend = in_python(args.calls, args.num)
    print(f"torch {torch.__version__}, {default_threads()} thread(s) per request, {args.calls} calls of {args.num}\n")
    print("| measured | median | p95 |")
    print("|---|---|---|")
    for name, values in {**app, "backend, this process (s)": backend}.items():
        print(f"| {name} | {statistics.median(values):.3f} | {p95(values):.3f} |")
    ratio = statistics.median(app["round trip (s)"]) / statistics.median(backend)
    print(f"\nround trip / backend (medians): {ratio:.2f}x (target 1.15x)")


if __name__ == "__main__":
    main()
