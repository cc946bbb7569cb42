"""Passing a request on to the service that answers it, and its answer back: the same
method, path, query, body and end-to-end headers, with the correlation id and the client's
address added; an unreachable or failing service is the client's UnavailableError (503)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from invariant.http import HttpService
from invariant.http.correlation import HEADER as CORRELATION
from shop.platform.service_calls import HEADER

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
                        "host", "content-length"})
"""Headers about one connection, never passed on (RFC 9110, 7.6.1); the length is set
again for the body as sent."""
_SET_HERE = frozenset({CORRELATION.lower(), "x-forwarded-for", HEADER.lower()})
"""Set by the gateway, never taken from a client (the services' credential least of all)."""


async def forward(client: HttpService, request: Request, correlation: str) -> Response:
    """``request`` sent to ``client``'s service; its answer as the gateway's response."""
    # As bytes: a header value need not be ASCII, and is passed on as it came.
    headers = [(k, v) for k, v in request.headers.raw
               if k.decode("latin-1").lower() not in HOP_BY_HOP | _SET_HERE]
    headers.append((CORRELATION.encode(), correlation.encode()))
    if request.client is not None:
        headers.append((b"X-Forwarded-For", request.client.host.encode()))
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.url.query:
        target += "?" + request.url.query
    body = await request.body()
    answer = await client.request(request.method, target, content=body or None,
                                  headers=headers)
    response = Response(answer.content, answer.status_code)
    del response.headers["content-length"]
    for name, value in answer.headers.multi_items():
        # The body arrives decoded: its encoding and length are the gateway's to set.
        if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
            response.headers.append(name, value)
    response.headers["content-length"] = str(len(answer.content))
    return response
