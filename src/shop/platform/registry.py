"""Where each context's service answers: ``SHOP_SERVICE_<CONTEXT>_URL``, the registry the
gateway routes by and a service finds the others' by (read at start-up; a missing or
malformed one stops it, naming it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from invariant.domain.errors import ConfigurationError
from invariant.http.client import checked_base_url

PREFIX, SUFFIX = "SHOP_SERVICE_", "_URL"


def setting(context: str) -> str:
    """The setting naming ``context``'s service, e.g. ``SHOP_SERVICE_CATALOG_URL``."""
    return f"{PREFIX}{context.upper()}{SUFFIX}"


def service_urls(env: Mapping[str, str], needed: Iterable[str],
                 known: Iterable[str]) -> dict[str, list[str]]:
    """``{context: [base URL, ...]}`` for every ``needed`` context, from ``env``: a
    service run as several instances is named by their URLs, separated by commas."""
    names = {setting(context): context for context in known}
    stray = sorted(k for k in env if k.startswith(PREFIX) and k not in names)
    if stray:
        raise ConfigurationError(f"unknown setting(s) {', '.join(stray)}; the contexts' "
                                 f"services are set by {', '.join(sorted(names))}")
    urls: dict[str, list[str]] = {}
    for context in needed:
        key = setting(context)
        given = [url.strip() for url in env.get(key, "").split(",") if url.strip()]
        if not given:
            raise ConfigurationError(
                f"{key} is not set: {context}'s requests go to that service; "
                "set it to the service's base URL, e.g. http://127.0.0.1:8101 (several "
                "instances: their URLs, separated by commas)")
        try:
            urls[context] = [checked_base_url(context, url) for url in given]
        except ConfigurationError as exc:
            raise ConfigurationError(f"{key}: {exc}") from None
    return urls
