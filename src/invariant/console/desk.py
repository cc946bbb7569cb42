"""One request to the console as its handlers see it (a :class:`Desk`), and the two guards
every route goes through: :func:`page` (an admin's session) and :func:`action` (an admin's
session, a POST with a valid CSRF token, logged and audited).

A browser without a session is sent to the log-in form (a partial refresh is answered 401,
so that its script reloads the page); a signed-in account that is not an admin is refused
with 403.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from invariant.clock import utc_now
from invariant.console import audit, csrf
from invariant.console.gate import Operator
from invariant.console.operated import Operated
from invariant.console.rendering import render
from invariant.domain.errors import InvariantError, NotFoundError

SESSION_COOKIE = "invariant_console_session"
MAX_FORM = 16_384
"""Bytes: the console's forms are a few fields; anything larger is refused."""
log = logging.getLogger("invariant.console")


@dataclass
class Desk:
    """What a handler works with: the request, the application, the operator, the base
    path of the console's links, and the submitted form (actions only)."""

    request: Request
    operated: Operated
    operator: Operator | None
    base: str
    form: dict[str, str] = field(default_factory=dict)

    @property
    def csrf_cookie(self) -> str:
        found = self.request.cookies.get(csrf.COOKIE)
        if found is None:
            found = self.request.state.new_csrf = csrf.new_cookie()
        return found

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def render(self, template: str, status: int = 200, /, **context: Any) -> Response:
        """The page ``template`` with the console's common context."""
        context.update(base=self.base, operator=self.operator, app=self.operated.name,
                       csrf_field=csrf.FIELD,
                       csrf=csrf.token(self.operated.secret, self.csrf_cookie),
                       notice=self.query("notice"), error=self.query("error"))
        response = HTMLResponse(render(template, context), status_code=status)
        return with_csrf_cookie(self.request, response, self.base)

    def redirect(self, path: str, **message: str) -> Response:
        """303 to ``path`` under the console, with a notice or error to show."""
        query = f"?{urlencode(message)}" if message else ""
        return RedirectResponse(f"{self.base}{path}{query}", status_code=303)

    async def audit(self, action: str, target: str, outcome: str) -> None:
        """Log and keep what this operator did."""
        who = "anonymous" if self.operator is None else self.operator.id
        await audit.record(self.operated.database,
                           audit.AuditEntry(utc_now(), who, action, target, outcome))


def with_csrf_cookie(request: Request, response: Response, base: str) -> Response:
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        response.set_cookie(csrf.COOKIE, new, httponly=True, samesite="strict",
                            path=base or "/", secure=request.url.scheme == "https")
    return response


Handler = Callable[[Desk], Awaitable[Response]]
Locate = Callable[[Request], Operated]


async def _admitted(request: Request, locate: Locate, base: str, *,
                    admins_only: bool = True) -> Desk | Response:
    operated = locate(request)
    token = request.cookies.get(SESSION_COOKIE)
    operator = None if not token else await operated.gate.operator(token)
    desk = Desk(request, operated, operator, base)
    if operator is None:
        if request.headers.get("x-console-partial") or request.method != "GET":
            return Response("log in again", status_code=401)
        return desk.redirect("/login")
    if admins_only and not operator.admin:
        log.warning("console: refused account %s (not an admin) at %s", operator.id,
                    request.url.path)
        return desk.render("refused.html", 403)
    return desk


def page(handler: Handler, locate: Locate, base: str) -> Callable[[Request], Awaitable[Response]]:
    """A GET route for admins."""
    async def endpoint(request: Request) -> Response:
        desk = await _admitted(request, locate, base)
        if isinstance(desk, Response):
            return desk
        try:
            return await handler(desk)
        except InvariantError as exc:
            status = 404 if isinstance(exc, NotFoundError) else 422
            return desk.render("problem.html", status, problem=str(exc))

    return endpoint


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form of ``request``; None when it is too large or not a form."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return None
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        return None


def forged(request: Request, secret: str, form: dict[str, str] | None) -> str | None:
    """Why a POST is refused as a possible forgery, or None when it is not one."""
    if not csrf.same_origin(request.headers.get("origin"), request.headers.get("host")):
        return "this form was sent from another site"
    sent = request.headers.get(csrf.HEADER) or (form or {}).get(csrf.FIELD)
    if not csrf.valid(secret, request.cookies.get(csrf.COOKIE), sent):
        return "the form's security token is missing or stale: reload the page and try again"
    return None


def action(handler: Handler, locate: Locate, base: str, *, admins_only: bool = True
           ) -> Callable[[Request], Awaitable[Response]]:
    """A POST route for admins (for any signed-in account with ``admins_only`` false): its
    CSRF token is checked before anything else; a refusal of the operation (an
    :class:`InvariantError`) is shown on the page it came from."""
    async def endpoint(request: Request) -> Response:
        form = await read_form(request)
        why = forged(request, locate(request).secret, form)
        if why is not None or form is None:
            log.warning("console: refused a POST to %s: %s", request.url.path, why)
            return Response(why or "the form could not be read", status_code=403
                            if why else 400)
        desk = await _admitted(request, locate, base, admins_only=admins_only)
        if isinstance(desk, Response):
            return desk
        desk.form = form
        try:
            return await handler(desk)
        except InvariantError as exc:
            await desk.audit(request.url.path.removeprefix(base), "", f"refused: {exc}")
            back = form.get("back", "/")
            return desk.redirect(back if back.startswith("/") else "/", error=str(exc))

    return endpoint
