"""The lab as an MCP server: every action is a tool, and pictures come back as images."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

import app
from genmodels.data import EXAMPLES_DIR
from tests.conftest import served
from ui.serving import ROOT

EXAMPLE = sorted(EXAMPLES_DIR.glob("*.png"))[0]


@pytest.fixture(scope="module")
def mcp_url():
    with served(app.demo) as url:
        yield url + "gradio_api/mcp/"


async def with_session(url: str, work):
    async with streamablehttp_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def test_every_action_is_a_described_tool(mcp_url):
    tools = asyncio.run(with_session(mcp_url, lambda session: session.list_tools())).tools
    paragraph = next(part for part in (ROOT / "README.md").read_text().split("\n\n") if "these are all of them" in part)
    assert {tool.name for tool in tools} == {name.lstrip("/") for name in re.findall(r"`(/\w+)`", paragraph)}
    for tool in tools:
        assert len(tool.description) > 40, f"{tool.name}: a sentence or more on what it does"
        for name, schema in tool.inputSchema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} is described"
    generate = next(tool for tool in tools if tool.name == "generate")
    model = generate.inputSchema["properties"]["model"]
    assert "dcgan" in model["anyOf"][0]["enum"], "models are offered as choices"
    assert model["anyOf"][1]["pattern"].startswith("^yours-"), "...and a model the caller trained"


def test_generate_and_roundtrip_answer_with_images(mcp_url):
    async def work(session):
        generated = await session.call_tool("generate", {"model": "dcgan", "seed": 0, "num": 4})
        picture = "data:image/png;base64," + base64.b64encode(EXAMPLE.read_bytes()).decode()  # as MCP clients send
        reconstructed = await session.call_tool("roundtrip", {"image": picture})
        return generated, reconstructed

    generated, reconstructed = asyncio.run(with_session(mcp_url, work))
    assert not generated.isError and not reconstructed.isError
    assert [item.mimeType for item in generated.content if item.type == "image"] == ["image/png"], "the grid"
    assert sum(item.type == "image" for item in reconstructed.content) >= 2, "the error map, and more"
    assert any("PSNR" in getattr(item, "text", "") for item in reconstructed.content)


def test_file_inputs_say_data_urls_and_a_url_to_the_servers_own_network_is_never_fetched(mcp_url):
    """Every file-taking tool tells the client to send pictures as data: URLs; a URL pointing at a
    server on 127.0.0.1 gets a sentence saying so, and that server never sees a request."""
    import http.server
    import threading

    hits = []

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(EXAMPLE.read_bytes())

        def log_message(self, *args):
            pass

    local = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=local.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{local.server_address[1]}/shirt.png"

    async def work(session):
        tools = (await session.list_tools()).tools
        answers = [await session.call_tool("roundtrip", {"image": url})]
        answers.append(await session.call_tool("invert", {"image": url.replace("http:", "https:"), "model": "vae"}))
        return tools, answers

    try:
        tools, answers = asyncio.run(with_session(mcp_url, work))
    finally:
        local.shutdown()
    taking_files = [tool for tool in tools if "data: URL" in str(tool.inputSchema)]
    assert {"roundtrip", "invert", "train", "load_checkpoint"} <= {tool.name for tool in taking_files}
    assert not any("http or https url" in str(tool.inputSchema) for tool in tools)
    for tool in taking_files:
        assert "data: URL" in tool.description and "upload_file_to_gradio" not in tool.description, tool.name
    for answer in answers:
        assert answer.isError and "not fetched from URLs" in answer.content[0].text
    assert hits == [], "the server never fetched the URL"


def test_no_tool_takes_a_gr_state(mcp_url):
    """A gr.State input cannot be set by an MCP client (Gradio warns at start); the page keeps its own."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.demo.mcp_server_obj.warn_about_state_inputs()


@pytest.mark.slow
def test_train_over_mcp_ends_with_a_model_the_other_tools_draw_from(mcp_url):
    """The Train tab's /train as an MCP tool: a 15 s VAE run on trousers answers with its status (the
    model's name, its FIDc) and the last snapshot as an image; generate then draws from that model."""

    async def work(session):
        trained = await session.call_tool("train", {"family": "vae", "classes": ["Trouser"], "budget_s": 15})
        texts = " ".join(getattr(item, "text", "") for item in trained.content)
        name = re.search(r"yours-vae-\w+", texts)
        generated = await session.call_tool("generate", {"model": name[0], "seed": 0, "num": 4}) if name else None
        return trained, texts, generated

    trained, texts, generated = asyncio.run(with_session(mcp_url, work))
    assert not trained.isError and "Done" in texts and "FIDc" in texts, texts[:500]
    assert any(item.type == "image" for item in trained.content), "the last snapshot"
    assert generated is not None and not generated.isError
    assert [item.type for item in generated.content].count("image") == 1, "the grid of the user's model"
