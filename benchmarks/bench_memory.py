"""The server's idle memory next to a bare "import torch, gradio" process, measured side by side.

    python -m benchmarks.bench_memory

Starts `python app.py` as the README says, waits until it serves and has warmed up (the studio's
directions and the latent map: until its CPU use stops), and reads its resident memory; then the same
for a process that only imports torch and gradio. Target: the app within 15% of the bare process.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.bench_load import free_port, rss_mb, start_server, wait_idle

BARE = "import torch, gradio, time; print('ready', flush=True); time.sleep(600)"


def settled_rss(pid: int, seconds: float = 20.0) -> float:
    """Resident memory (MB) once it stops growing: the largest of the last readings over `seconds`."""
    readings = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readings.append(rss_mb(pid))
        time.sleep(1.0)
    return max(readings[-5:])


def main() -> None:
    server = start_server(free_port())
    try:
        wait_idle(server.pid)
        app_mb = settled_rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare = subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE, text=True)
    try:
        bare.stdout.readline()
        bare_mb = settled_rss(bare.pid, 8.0)
    finally:
        bare.kill()
        bare.wait()
    print(f"idle app: {app_mb:.0f} MB, bare import torch + gradio: {bare_mb:.0f} MB, ratio {app_mb / bare_mb:.2f}")
    print(f"target: within 15% ({'met' if app_mb <= 1.15 * bare_mb else 'not met'})")


if __name__ == "__main__":
    main()
