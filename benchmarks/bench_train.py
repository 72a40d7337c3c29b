"""The Train tab, measured where its users are: through /train on a server started as the README says.

    python -m benchmarks.bench_train                          # all three, each family at 30 s, 1, 2, 5 min
    python -m benchmarks.bench_train --families vae --budgets 30 60
    python -m benchmarks.bench_train --serving-only           # what a training job costs everyone else

Starts `python app.py` (defaults: one training slot, one thread per job at the lowest priority) and
waits until it is idle. Then:
1. Quality: for each family and budget, one /train call at the tab's defaults on all of Fashion-MNIST:
   seconds from the call to the first snapshot on the client, to the last update, and the FIDc the run
   reports (1,000 samples against the test set, as the tab shows it).
2. Serving: /generate (DCGAN, 16 images) round trips on the idle server, then again while a 2-minute
   DCGAN job trains in another session: median and p95, and their ratio (target: p95 within 2x).
   The live controls' figures with a job training: `python -m benchmarks.bench_live --train`.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import re
import statistics
import threading
import time

from benchmarks.bench_load import free_port, local_client, p95, start_server, wait_idle

FAMILIES = ("vae", "dcgan", "flow")
BUDGETS = (30, 60, 120, 300)


def train_once(url: str, family: str, budget_s: float) -> dict:
    """One /train call at the tab's defaults: time to the first snapshot and to the end, and the FIDc."""
    client = local_client(url)
    started = time.perf_counter()
    job = client.submit(family, [], [], budget_s, api_name="/train")
    first = None
    for update in job:
        grid = update[2]  # a file (a path, or its description when files are not downloaded) or a skip
        if first is None and (isinstance(grid, str) or (isinstance(grid, dict) and grid.get("url"))):
            first = time.perf_counter() - started
    ended = time.perf_counter() - started
    status = job.outputs()[-1][0]
    found = re.search(r"FIDc \*\*([\d.]+)\*\*", status)
    return {"first_snapshot_s": first, "end_s": ended, "fidc": float(found.group(1)) if found else None}


def generate_times(url: str, calls: int) -> list[float]:
    """Milliseconds of `calls` /generate round trips (DCGAN, 16 images), after 3 untimed ones."""
    client = local_client(url)
    times = []
    for index in range(calls + 3):
        started = time.perf_counter()
        client.predict(model="dcgan", seed=index, num=16, api_name="/generate")
        if index >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return times


def serving(url: str, calls: int) -> None:
    """/generate idle, then while a DCGAN job trains in another session."""
    idle = generate_times(url, calls)
    trainer = threading.Thread(target=train_once, args=(url, "dcgan", 120), daemon=True)
    trainer.start()
    time.sleep(15)  # the job's process started and training (past its import and data loading)
    busy = generate_times(url, calls)
    print("\n| /generate dcgan x16 | median ms | p95 ms |\n|---|---|---|")
    print(f"| idle | {statistics.median(idle):.0f} | {p95(idle):.0f} |")
    print(f"| a DCGAN job training | {statistics.median(busy):.0f} | {p95(busy):.0f} |")
    print(f"\np95 ratio (training / idle): {p95(busy) / p95(idle):.2f}x (target: within 2x)")
    trainer.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES), help="families")
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS), help="budgets in seconds")
    parser.add_argument("--calls", type=int, default=40, help="timed /generate calls for the serving figures")
    parser.add_argument("--serving-only", action="store_true", help="only the serving figures")
    parser.add_argument("--no-serving", action="store_true", help="only the quality figures")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_idle(server.pid)
        if not args.serving_only:
            print("| family | budget s | first snapshot s | last update s | FIDc (1,000 samples) |")
            print("|---|---|---|---|---|")
            for family in args.families:
                for budget in args.budgets:
                    result = train_once(url, family, budget)
                    fidc = f"{result['fidc']:.2f}" if result["fidc"] is not None else "-"
                    print(
                        f"| {family} | {budget:g} | {result['first_snapshot_s']:.1f} | {result['end_s']:.1f} | {fidc} |",
                        flush=True,
                    )
        if not args.no_serving:
            serving(url, args.calls)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
