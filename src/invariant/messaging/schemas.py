"""Publishing integration event schemas and checking changes against the released ones
(``invariant schemas export|check``).

A change is *breaking* for consumers of a released ``name.vN`` when the schema of the same
name and version, regenerated from the code: no longer exists; drops a property; changes a
property's type, format, pattern or constant; makes a required property optional; or
requires a property that was not required (messages already published lack it). Adding an
optional property is not breaking. A breaking change needs a new version.

:func:`asyncapi` describes the same events as an AsyncAPI 3.0 document (``asyncapi.json``,
written beside the schemas by ``invariant schemas export``): a channel per event name, a
message per version whose payload references that version's schema file, and a ``send``
operation per channel (the application publishes them, through the outbox relay).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from invariant.messaging.published_language import (
    SCHEMA_DIALECT,
    IntegrationEvent,
    json_schema,
    schema_key,
)

_COMPARED = ("type", "format", "pattern", "const", "enum")

ASYNCAPI_VERSION = "3.0.0"
ASYNCAPI_FILE = "asyncapi.json"
PAYLOAD_FORMAT = "application/schema+json;version=draft-2020-12"
"""The payloads' schema format: JSON Schema 2020-12, the dialect the schema files name."""


def events_in(module_name: str) -> list[type[IntegrationEvent]]:
    """The integration events defined in ``module_name``, by name and version."""
    module = importlib.import_module(module_name)
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, IntegrationEvent)
             and v is not IntegrationEvent and v.__module__ == module.__name__
             and hasattr(v, "event_name")]
    return sorted(found, key=schema_key)


def export(events: Iterable[type[IntegrationEvent]], out: Path) -> list[Path]:
    """Write ``<name>.v<version>.schema.json`` per event into ``out``; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for event in events:
        path = out / f"{schema_key(event)}.schema.json"
        path.write_text(json.dumps(json_schema(event), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def asyncapi(events: Iterable[type[IntegrationEvent]], *, title: str,
             version: str = "1.0.0", description: str = "") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``events``; each message's payload is a ``$ref`` to its
    schema file (``<name>.v<version>.schema.json``, relative to the document)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event in sorted(events, key=schema_key):
        key, name = schema_key(event), event.event_name
        messages[key] = {
            "name": name,
            "title": f"{name} v{event.event_version}",
            "summary": (event.__doc__ or "").strip().split("\n\n")[0] or f"{name} "
                       f"v{event.event_version}",
            "contentType": "application/json",
            "payload": {"schemaFormat": PAYLOAD_FORMAT,
                        "schema": {"$ref": f"./{key}.schema.json"}},
            "x-invariant-schema-version": event.event_version,
        }
        channel = channels.setdefault(name, {
            "address": name,
            "title": name,
            "description": (
                f"Messages of type {name}, every published version. The address is the "
                "message type: the routing key on RabbitMQ, the subject <channel>.<type> on "
                "NATS; Redis and Kafka carry every type on one stream or topic (the type is in "
                "the body)."),
            "messages": {},
        })
        channel["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        operation = operations.setdefault(f"send.{name}", {
            "action": "send",
            "title": f"publish {name}",
            "channel": {"$ref": f"#/channels/{_pointer(name)}"},
            "messages": [],
        })
        operation["messages"].append(
            {"$ref": f"#/channels/{_pointer(name)}/messages/{_pointer(key)}"})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version,
                 "description": description or (
                     "Integration events (the published language), generated from their "
                     f"definitions; payload schemas are JSON Schema ({SCHEMA_DIALECT}).")},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def export_asyncapi(events: Iterable[type[IntegrationEvent]], out: Path, *, title: str,
                    version: str = "1.0.0") -> Path:
    """Write :func:`asyncapi`'s document to ``out/asyncapi.json`` (beside the schemas)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ASYNCAPI_FILE
    document = asyncapi(events, title=title, version=version)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def _pointer(key: str) -> str:
    """``key`` escaped for a JSON Pointer (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def check(events: Iterable[type[IntegrationEvent]], released: Path) -> list[str]:
    """The breaking differences between the events and the released schemas in
    ``released`` (empty when none)."""
    current = {schema_key(e): json_schema(e) for e in events}
    problems: list[str] = []
    for path in sorted(released.glob("*.schema.json")):
        key = path.name.removesuffix(".schema.json")
        old = json.loads(path.read_text())
        new = current.get(key)
        if new is None:
            problems.append(f"{key}: released, but no integration event defines it any more")
            continue
        problems += [f"{key}: {p}" for p in _compare(old, new, old, new, "")]
    return problems


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(name, {})
    return node


def _compare(old: dict[str, Any], new: dict[str, Any], old_root: dict[str, Any],
             new_root: dict[str, Any], where: str) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems = []
    label = where or "the message"
    for key in _COMPARED:
        if old.get(key) != new.get(key):
            problems.append(f"{label}: {key} changed from {old.get(key)!r} to {new.get(key)!r}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in old_props:
        path = f"{where}.{name}" if where else name
        if name not in new_props:
            problems.append(f"{path}: removed")
        else:
            if name in old_req and name not in new_req:
                problems.append(f"{path}: no longer required")
            problems += _compare(old_props[name], new_props[name], old_root, new_root, path)
    for name in sorted(new_req - old_req):
        problems.append(f"{(where + '.') if where else ''}{name}: newly required")
    if "items" in old and "items" in new:
        problems += _compare(old["items"], new["items"], old_root, new_root, f"{label}[]")
    return problems
