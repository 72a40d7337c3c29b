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
