"""The benchmark scripts run, at their smallest sizes, and print the tables docs/results.md quotes.

Nothing else runs them between the sessions that measure with them, so a change elsewhere can break one
unseen: bench_realize read `flow.config.steps` after the flow's sampling settings moved to
`FlowSampling`. The figures here are from a handful of images, so only what holds at any size is
checked: the table's rows, the kept pixels coming back exactly, a test image surviving preparation.
The servers' benchmarks (bench_app, bench_load, bench_live, bench_train, bench_memory) start the app and
are covered by the tests of what they call; bench_speedrun trains for minutes; bench_generation times
`Lab.generate` alone (a minute here for nothing the others do not run). About 4 minutes in all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genmodels.registry import MODELS
from tests.conftest import needs_data

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, needs_data]


def bench(name: str, *args: str) -> str:
    """Run `python -m benchmarks.NAME ARGS` as a user would; its standard output."""
    command = [sys.executable, "-m", f"benchmarks.{name}", *args]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows(output: str, *first_cells: str) -> list[list[str]]:
    """The Markdown table rows whose first cells are `first_cells`, split into cells."""
    found = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(first_cells)] == list(first_cells):
            found.append(cells)
    return found


def test_bench_realize():
    output = bench("bench_realize", "--num", "10", "--strengths", "0.5", "--kinds", "blurred")
    (projected,) = rows(output, "blurred", "VAE projection")
    (realized,) = rows(output, "blurred", "flow realize", "0.5")
    (given,) = rows(output, "blurred", "flow realize, class given", "0.5")
    for row in (projected, realized, given):
        assert float(row[3]) > 0 and row[4].endswith("%"), row  # FIDc, class kept


def test_bench_inpaint():
    output = bench("bench_inpaint", "--num", "1", "--models", "vae", "flow", "--flow-settings", "6:1")
    for region in ("centre 12x12", "right half"):
        found = rows(output, region, "vae") + rows(output, region, "flow")
        # The VAE, then the flow at its defaults without and with the class, and at 6 steps, resample 1.
        assert [row[2] for row in found] == ["", "defaults, any class", "defaults, class given", "6 steps, resample 1"]
        assert all(row[4] == "100.0" for row in found), f"the kept pixels come back exactly: {found}"


def test_bench_inversion():
    output = bench("bench_inversion", "--num", "2", "--models", "vae", "flow")
    (vae,) = rows(output, "vae", "backend")
    (flow,) = rows(output, "flow", "backend")
    # Means over the first two test images, far under what they measure (the VAE's encoder 29.0 and 17.4 dB;
    # over 100 images the VAE's worst is 13.8, the flow's 18.1, docs/results.md).
    assert float(vae[2]) > 15 and float(flow[2]) > 15, (vae, flow)


def test_bench_flow():
    output = bench("bench_flow", "--num", "20", "--steps", "2", "--guidance", "1", "--threads", "1")
    assert len(rows(output, "dcgan")) == 1
    flow = rows(output, "flow")
    # The checkpoint's own settings first (its config.json), then one row per setting changed.
    own = json.loads((MODELS["flow"].checkpoint_path / "config.json").read_text())["sampling"]
    assert [row[1:3] for row in flow] == [
        [str(own["steps"]), f"{own['guidance']:g}"],
        ["2", f"{own['guidance']:g}"],
        [str(own["steps"]), "1"],
    ], flow


def test_bench_preprocess():
    output = bench("bench_preprocess", "--num", "10")
    (exact,) = rows(output, "28 px", "auto")
    assert exact[-1] == "100.0%", f"a 28 px test image reaches the model unchanged: {exact}"
    assert len(rows(output)) == 2 + 3 * 2, "a header, its rule, and three uploads by two preparations"


def test_bench_quality():
    output = bench("bench_quality", "--num", "20")
    for name in ("dcgan", "vae", "cgan", "flow"):
        assert rows(output, name), f"a row for {name}"
    assert rows(output, "GANs ahead of VAEs on FIDc")


def test_bench_precision():
    output = bench("bench_precision", "--steps", "1", "--threads", "1")
    found = re.findall(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)x \|$", output, re.MULTILINE)
    assert {"vae", "dcgan", "flow"} <= {name for name, *_ in found}, output


def test_bench_training():
    output = bench("bench_training", "--steps", "2")
    (ratio,) = rows(output, "ratio")
    assert float(ratio[1].rstrip("x")) > 0
