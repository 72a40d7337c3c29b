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
    assert "dcgan" in generate.inputSchema["properties"]["model"]["enum"], "models are offered as choices"


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
