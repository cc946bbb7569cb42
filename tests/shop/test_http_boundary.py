"""shop's HTTP boundary (issue #14, item 6): a 405 names every method of its path, and
request bodies are capped before they are parsed (413), over a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest

from tests.shop.conftest import PROBLEM, ShopServer

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def server(sqlite_server: ShopServer) -> ShopServer:
    """The shop on SQLite: the HTTP boundary does not depend on the store."""
    return sqlite_server


async def test_a_405_names_every_method_the_document_gives_its_path(server: ShopServer
                                                                   ) -> None:
    document = (await server.client.get("/openapi.json")).json()
    admin = await server.admin()
    shared = 0
    for template, operations in document["paths"].items():
        documented = sorted(m.upper() for m in operations)
        shared += len(documented) > 1
        path = re.sub(r"\{[^}]+\}", "x-1", template)
        for method in METHODS:
            if method in documented:
                continue
            response = await server.client.request(method, path, headers=admin)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["allow"] == ", ".join(documented), (method, path)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["allowed"] == documented
    assert shared >= 6  # paths with more than one method: where Starlette named only one
    refused = await server.client.put("/orders", headers=admin)
    assert refused.headers["allow"] == "GET, POST"


async def raw_request(server: ShopServer, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` and ``body`` as they are (the body need not be complete); the status
    and body of the answer, which must come without the rest of the request."""
    host, port = server.shop.settings.host, server.shop.settings.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        try:
            status = await asyncio.wait_for(reader.readline(), 15)
            head_lines = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        except TimeoutError:
            pytest.fail("the server waited for the rest of a body it should have refused")
        length = int(re.search(rb"content-length: (\d+)", head_lines.lower()).group(1))
        return int(status.split()[1]), await reader.readexactly(length)
    finally:
        writer.close()


async def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
        server: ShopServer) -> None:
    admin = await server.admin()
    cap = server.shop.settings.max_body
    assert cap == 64 * 1024  # the default
    status, body = await raw_request(server, (
        "PUT /admin/inventory/keyboard HTTP/1.1\nHost: shop\n"
        f"Authorization: {admin['Authorization']}\nContent-Type: application/json\n"
        f"Content-Length: {10**9}\n"))
    assert status == 413
    problem = json.loads(body)
    assert problem["type"] == "urn:invariant:problem:too-large"
    assert problem["detail"] == f"the request body is larger than {cap} bytes; send at most {cap}"
    json_admin = {**admin, "Content-Type": "application/json"}
    padded = b'{"on_hand": 1' + b" " * cap + b"}"
    response = await server.client.put("/admin/inventory/keyboard", headers=json_admin,
                                       content=padded)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM
    assert (await server.client.get("/inventory/keyboard")).json()["available"] == 50
    within = await server.client.put("/admin/inventory/keyboard", headers=json_admin,
                                     content=padded[:100] + b"}")
    assert within.status_code == 200, within.text


async def test_a_chunked_body_is_cut_once_it_passes_the_cap(server: ShopServer) -> None:
    admin = await server.admin()
    cap = server.shop.settings.max_body
    chunk = b" " * 8192
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                      for _ in range(cap // len(chunk) + 2))
    status, body = await raw_request(server, (  # the body never ends: no last chunk
        "PUT /admin/inventory/keyboard HTTP/1.1\nHost: shop\n"
        f"Authorization: {admin['Authorization']}\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\n"), b"3\r\n{\"o\r\n" + chunks)
    assert status == 413
    assert json.loads(body)["type"] == "urn:invariant:problem:too-large"

    async def small() -> AsyncIterator[bytes]:
        yield b'{"on_hand": '
        yield b"7}"

    response = await server.client.put(
        "/admin/inventory/keyboard", content=small(),
        headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["on_hand"] == 7
