"""One JSON line per log record (``INVARIANT_LOG_FORMAT=json``), with the trace id, span
id and correlation id of the flow that wrote it, and never a payload, a password or a code.

What a line holds is fixed: time, level, logger, message, the ids, and an error's type and
traceback. Nothing passed as ``extra`` is written (a record's extras are where payloads end
up). A mapping or a sequence given as an argument of the message is written as its size
only, and the value after a secret's name (``password``, ``code``, ``otp``, ``token``,
``secret``, and ``=`` or ``:`` forms) is masked wherever it appears in the text.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from invariant.domain.errors import ConfigurationError
from invariant.telemetry import tracing
from invariant.telemetry.correlation import correlation_id

FORMATS = ("text", "json")
MASK = "***"
_SECRET = re.compile(
    r"(?i)\b(password|passwd|passphrase|pwd|otp|one[-_ ]time code|code|sealed_code|secret"
    r"|token|api[-_]?key|authorization)\b([\"']?\s*[=:]\s*[\"']?|\s+(?:is\s+|was\s+)?)"
    r"(?:bearer\s+)?[^\s\"',;}\]]+")


def mask(text: str) -> str:
    """``text`` with the value after each secret's name replaced by ``***``."""
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def _safe(arg: Any) -> Any:
    if isinstance(arg, Mapping):
        return f"<{len(arg)} fields>"
    if isinstance(arg, list | tuple | set | frozenset | bytes | bytearray):
        return f"<{len(arg)} items>"
    return arg


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": mask(self._message(record))}
        ids = tracing.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        correlation = correlation_id()
        if correlation is not None:
            line["correlation_id"] = correlation
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        args: Any = record.args
        if isinstance(args, Mapping):  # one mapping: named fields, or a payload for %s
            args = ({key: _safe(value) for key, value in args.items()}
                    if "%(" in str(record.msg) else _safe(args))
        elif args:
            args = tuple(_safe(a) for a in args)
        try:
            return str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError):
            return f"{record.msg} (its arguments did not fit the message)"


def log_format(environ: Mapping[str, str]) -> str:
    """``INVARIANT_LOG_FORMAT`` (``text``, the default, or ``json``)."""
    value = environ.get("INVARIANT_LOG_FORMAT", "text").strip().lower() or "text"
    if value not in FORMATS:
        raise ConfigurationError(f"INVARIANT_LOG_FORMAT={value!r} is not one of "
                                 f"{', '.join(FORMATS)}")
    return value


def configure_logging(environ: Mapping[str, str], *, level: int = logging.INFO,
                      stream: Any = None) -> logging.Handler | None:
    """With ``INVARIANT_LOG_FORMAT=json``, make the root logger write JSON lines to
    ``stream`` (default: standard error), replacing its handlers; the handler, or None
    when the format is ``text`` (logging is left as the application set it)."""
    if log_format(environ) != "json":
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
