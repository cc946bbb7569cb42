"""Cross-site request forgery: every form and action of the console carries a token that
only a page the console served can know.

The browser gets a random ``invariant_console_csrf`` cookie (SameSite=Strict, HttpOnly)
on its first page; the token is the HMAC of that cookie under the application's secret.
A POST whose form field (or ``X-CSRF-Token`` header) is not the token of its cookie, or
whose ``Origin`` is another site, is refused with 403, before anything is done.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "invariant_console_csrf"
FIELD = "csrf"
HEADER = "x-csrf-token"


def new_cookie() -> str:
    """A fresh random cookie value."""
    return secrets.token_urlsafe(32)


def token(secret: str, cookie: str) -> str:
    """The token forms carry for the browser holding ``cookie``."""
    return hmac.new(secret.encode(), f"console-csrf:{cookie}".encode(),
                    hashlib.sha256).hexdigest()


def valid(secret: str, cookie: str | None, sent: str | None) -> bool:
    """Whether ``sent`` is the token of ``cookie`` (both present)."""
    return bool(cookie and sent) and hmac.compare_digest(token(secret, cookie or ""),
                                                         sent or "")


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` header (absent on some browsers' same-site forms) is
    this console's own ``Host``."""
    if origin is None:
        return True
    return host is not None and origin.split("://", 1)[-1] == host
