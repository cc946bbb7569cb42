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
                 known: Iterable[str]) -> dict[str, str]:
    """``{context: base URL}`` for every ``needed`` context, from ``env``."""
    names = {setting(context): context for context in known}
    stray = sorted(k for k in env if k.startswith(PREFIX) and k not in names)
    if stray:
        raise ConfigurationError(f"unknown setting(s) {', '.join(stray)}; the contexts' "
                                 f"services are set by {', '.join(sorted(names))}")
    urls: dict[str, str] = {}
    for context in needed:
        key = setting(context)
        if not env.get(key):
            raise ConfigurationError(
                f"{key} is not set: {context}'s requests go to that service; "
                "set it to the service's base URL, e.g. http://127.0.0.1:8101")
        try:
            urls[context] = checked_base_url(context, env[key])
        except ConfigurationError as exc:
            raise ConfigurationError(f"{key}: {exc}") from None
    return urls
