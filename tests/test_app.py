"""app.py, the entry point: the page built once on first use, the command line."""

from __future__ import annotations

import gradio as gr
import pytest

import app
from genmodels.registry import generative_names


def test_demo_is_built_on_first_use_with_the_bundled_models():
    assert isinstance(app.demo, gr.Blocks)
    assert app.demo is app.demo, "built once"
    assert app.lab.generative() == generative_names() and not app.lab.broken


def test_command_line_defaults_and_refusals(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = app.parse_args([])
    assert (args.host, args.port, args.threads >= 1, args.hub_repo) == ("127.0.0.1", 7999, True, [])
    for bad in (["--threads", "0"], ["--hub-repo", "nonsense"], ["--hub-repo", "dcgan=../etc"]):
        with pytest.raises(SystemExit):
            app.parse_args(bad)


# Built and used (the map, directions, an upload prepared, an edit, a grid): what did the server import?
USED_APP = """
import sys
import numpy as np
import app
from genmodels.data import EXAMPLES_DIR
from genmodels.editing import EditParams
from genmodels.images import grid
from genmodels.preprocess import prepare_upload
app.lab.map_picture()
app.lab.directions("vae")
image = prepare_upload(sorted(EXAMPLES_DIR.glob("*.png"))[0].read_bytes(), "full").image
app.lab.edit(image, EditParams(crop=0.8, angle=30.0, scale=1.2, shear_x=10.0))
grid(app.lab.generate("flow", 0, 4))
print(" ".join(sorted(sys.modules)))
"""


def test_the_server_imports_no_evaluation_training_or_compiler_libraries():
    """torchvision's package import loads torch._dynamo and Triton (156 MB); evaluation libraries are for the CLI."""
    import subprocess
    import sys

    modules = set(
        subprocess.run([sys.executable, "-c", USED_APP], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "app" in modules and "genmodels.editing" in modules
    heavy = {"torchvision", "torch._dynamo", "triton", "torchmetrics", "sklearn", "scipy", "diffusers", "matplotlib"}
    assert heavy & modules == set()


# GAN inversions or flow grids on a worker thread, as the server computes requests, after one on another
# thread (another request, the warm-up): page faults per call.
WORKER_FAULTS = """
import resource, sys, threading
import torch
from ui.serving import release_freed_memory
if sys.argv[1] == "server":
    release_freed_memory()
torch.set_num_threads(1)
from genmodels.data import EXAMPLES_DIR
from genmodels.lab import Lab
from genmodels.preprocess import prepare_upload
lab = Lab("cpu")
images = [prepare_upload(path.read_bytes()).image for path in sorted(EXAMPLES_DIR.glob("*.png"))[:4]]
if sys.argv[2] == "flow":  # /generate's default: 16 images at the checkpoint's steps and guidance
    call = lambda i: lab.generate("flow", i, 16, label="Bag")
else:
    call = lambda i: lab.invert("cgan", images[i], label=9)
call(0)
faults = []
def work():
    call(0)  # the thread's own heap set up
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for i in range(len(images)):
        call(i)
    faults.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) // len(images))
worker = threading.Thread(target=work)
worker.start()
worker.join()
print(faults[0])
"""


@pytest.mark.parametrize("work", ["cgan inversion", "flow"])
def test_the_servers_memory_settings_keep_a_worker_threads_heap(work):
    """With glibc's mmap threshold fixed (the server's memory setting), a worker thread's heap shrank and
    grew back on every generator pass of an inversion (tens of thousands of page faults each, a third
    more CPU), and at 256 KiB every activation of a 16-image flow call was a fresh mapping (280,000
    faults, twice the time). With the server's settings a worker faults hardly at all, for either."""
    import subprocess
    import sys

    def faults(mode: str) -> int:
        command = [sys.executable, "-c", WORKER_FAULTS, mode, work.split()[0]]
        return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])

    server = faults("server")
    assert server < 1000, server
