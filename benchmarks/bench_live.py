"""Live controls, measured in the page: move a control and wait for the picture on screen to change.

    python -m benchmarks.bench_live [--moves 30]
    python -m benchmarks.bench_live --train      # the same while a DCGAN job trains (Train tab, another session)

Starts `python app.py` as the README says, opens it in Chromium (Debian's, driven by Playwright), and
for each live control types a new value into it (as a slider's number box takes it; a drag sends the
same `input` events) and times until the picture it drives shows new pixels. Prints median and p95 per
control. Targets on this 2-core CPU for the GAN and VAE actions: median under 250 ms, p95 under 500 ms
(Generate opens on its best model, the flow, so the page is opened on a link that picks the DCGAN).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from benchmarks.bench_load import free_port, p95, start_server, wait_idle
from genmodels.data import EXAMPLES_DIR
from tests.conftest import CHROMIUM
from tests.test_browser import CHROMIUM_FLAGS

# (tab, control's elem_id, picture's elem_id, which <img> under it, values to cycle through)
CONTROLS = [
    ("Generate", "generate-num", "generate-grid", 0, [4, 9, 16, 1]),
    ("Interpolate", "interpolate-position", "interpolate-frame", 0, [0.1, 0.35, 0.6, 0.85]),
    ("Edit", "edit-angle", "edit-preview", 0, [15, 45, 90, -30]),
    ("Studio", "studio-amount", "studio-slider", 1, [1, 2.5, -1, 4]),
]


def time_moves(page, tab: str, control: str, picture: str, index: int, values: list, moves: int) -> list[float]:
    """Seconds from typing each value to the picture's change, `moves` times."""
    page.get_by_role("tab", name=tab).click()
    box = page.locator(f"#{control} input[type=number]").first
    seconds = []
    for move in range(moves + 1):
        before = page.evaluate(
            "([sel, i]) => document.querySelectorAll(sel + ' img')[i]?.src || ''", [f"#{picture}", index]
        )
        started = time.perf_counter()
        box.fill(str(values[move % len(values)]))
        box.press("Enter")
        page.wait_for_function(
            "([sel, i, before]) => { const img = document.querySelectorAll(sel + ' img')[i];"
            " return img && img.complete && img.naturalWidth > 0 && img.src !== before; }",
            arg=[f"#{picture}", index, before],
            timeout=60_000,
        )
        if move:  # the first move of each control warms it up
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30, help="timed moves per control")
    parser.add_argument("--train", action="store_true", help="measure while a DCGAN job of the Train tab trains")
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    try:
        wait_idle(server.pid)
        if args.train:  # a job long enough for every move, in its own session; it goes with the server
            from benchmarks.bench_train import train_once

            url = f"http://127.0.0.1:{port}/"
            threading.Thread(target=train_once, args=(url, "dcgan", 600), daemon=True).start()
            time.sleep(15)  # past the job's start-up: measured while it trains
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/?model=dcgan")  # a shared link: Generate opens on the flow
            page.locator("#generate-grid img").first.wait_for()
            page.get_by_role("tab", name="Edit").click()
            page.locator("#edit-upload input[type=file]").set_input_files(str(sorted(EXAMPLES_DIR.glob("*.png"))[0]))
            page.locator("#edit-preview img").first.wait_for()
            page.get_by_role("tab", name="Studio").click()
            page.locator("#studio-seed").click()
            page.locator("#studio-slider img").first.wait_for()
            print("| control | picture | median ms | p95 ms |\n|---|---|---|---|")
            for tab, control, picture, index, values in CONTROLS:
                seconds = time_moves(page, tab, control, picture, index, values, args.moves)
                print(
                    f"| {control} | {picture} | {statistics.median(seconds) * 1000:.0f} | {p95(seconds) * 1000:.0f} |"
                )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
