"""The streams page: categories with their counts, streams found by a part of their id, a
stream's events page by page, one event's data and metadata, and the flow it belongs to
(the events sharing its correlation id)."""

from __future__ import annotations

from starlette.responses import Response

from invariant.console.desk import Desk
from invariant.domain.errors import ConfigurationError
from invariant.store.catalog import CORRELATION_KEY, StreamCatalog

PAGE = 20
MAX_SEARCH = 200
"""Characters: a stream id search longer than this is refused."""


def _catalog(desk: Desk) -> StreamCatalog:
    storage = desk.operated.storage
    if not isinstance(storage, StreamCatalog):
        raise ConfigurationError(
            f"{type(storage).__name__} cannot list its streams (it is not a StreamCatalog)")
    return storage


def _number(desk: Desk, name: str, default: int) -> int:
    text = desk.query(name, str(default))
    if not text.isdigit() or len(text) > 18:
        raise ConfigurationError(f"{name}={text!r} is not a whole number")
    return int(text)


async def streams(desk: Desk) -> Response:
    search = desk.query("q").strip()
    if len(search) > MAX_SEARCH:
        return desk.render("streams.html", 422, categories=[], search=search[:50],
                           found=[], problem=f"search for at most {MAX_SEARCH} characters")
    catalog = _catalog(desk)
    found = await catalog.find_streams(search, limit=50) if search else []
    return desk.render("streams.html", categories=await catalog.categories(),
                       search=search, found=found, problem="")


async def stream(desk: Desk) -> Response:
    stream_id = desk.param("stream_id")
    start = max(1, _number(desk, "from", 1))
    storage = desk.operated.storage
    events = await storage.read_stream(stream_id, from_version=start, limit=PAGE)
    version = await storage.stream_version(stream_id)
    return desk.render("stream.html", stream_id=stream_id, events=events, version=version,
                       start=start, page=PAGE)


async def event(desk: Desk) -> Response:
    position = _number_param(desk, "position")
    found = await desk.operated.storage.read_all(after_position=position - 1, limit=1)
    if not found or found[0].position != position:
        return desk.render("event.html", 404, event=None, position=position, flow=[],
                           correlation=None)
    recorded = found[0]
    correlation = recorded.metadata.get(CORRELATION_KEY)
    flow = ([] if not isinstance(correlation, str)
            else await _catalog(desk).read_correlated(correlation, limit=100))
    return desk.render("event.html", event=recorded, position=position, flow=flow,
                       correlation=correlation)


async def flow(desk: Desk) -> Response:
    correlation = desk.param("correlation")
    events = await _catalog(desk).read_correlated(correlation, limit=200)
    return desk.render("flow.html", correlation=correlation, events=events)


def _number_param(desk: Desk, name: str) -> int:
    text = desk.param(name)
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise ConfigurationError(f"{text!r} is not an event position (a whole number from 1)")
    return int(text)
