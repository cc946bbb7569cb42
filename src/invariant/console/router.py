"""The console as a FastAPI router: ``app.include_router(console_router(locate))`` serves
it under ``/console`` (or the ``prefix`` given), for the application ``locate`` finds from
a request (see :class:`~invariant.console.operated.Operated`)."""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from invariant.console import audit, log, messaging, processes, projections, streams
from invariant.console.desk import (
    SESSION_COOKIE,
    Desk,
    Handler,
    Locate,
    action,
    forged,
    page,
    read_form,
)
from invariant.console.gate import LoginRefused

STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
ACTIVITY = 50

PAGES: dict[str, Handler] = {
    "/streams": streams.streams,
    "/streams/{stream_id:path}": streams.stream,
    "/events/{position}": streams.event,
    "/flows/{correlation:path}": streams.flow,
    "/log": log.log_page,
    "/log/tail": log.log_tail,
    "/projections": projections.projections_page,
    "/projections/table": projections.projections_table,
    "/processes": processes.processes_page,
    "/processes/{process_id:path}": processes.process_page,
    "/messaging": messaging.messaging_page,
    "/deadletters/{letter_id}": messaging.letter_page,
}
ACTIONS: dict[str, Handler] = {
    "/projections/{name}/{version}/pause": projections.pause,
    "/projections/{name}/{version}/resume": projections.resume,
    "/projections/{name}/{version}/rebuild": projections.rebuild,
    "/projections/{name}/{version}/switch": projections.switch,
    "/projections/{name}/{version}/retire": projections.retire,
    "/process-resume/{process_id:path}": processes.resume,
    "/deadletters/{letter_id}/replay": messaging.replay,
    "/deadletters/{letter_id}/discard": messaging.discard_letter,
    "/jobs/{job_id}/retry": messaging.retry_job,
    "/jobs/{job_id}/discard": messaging.discard_job,
}


def console_router(locate: Locate, *, prefix: str = "/console") -> APIRouter:
    """Every page and action of the console, for admins of the application ``locate``
    returns (kept out of the OpenAPI document)."""
    router = APIRouter(prefix=prefix, include_in_schema=False)

    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]],
              method: str) -> None:
        router.add_api_route(path, endpoint, methods=[method], include_in_schema=False)

    for path, handler in ACTIONS.items():
        route(path, action(handler, locate, prefix), "POST")
    for path, handler in {"": _home, "/activity": _activity, **PAGES}.items():
        route(path, page(handler, locate, prefix), "GET")
    route("/static/{name}", _static, "GET")
    route("/login", _login_form(locate, prefix), "GET")
    route("/login", _log_in(locate, prefix), "POST")
    route("/logout", action(_log_out, locate, prefix, admins_only=False), "POST")
    return router


async def _home(desk: Desk) -> Response:
    return desk.redirect("/streams")


async def _activity(desk: Desk) -> Response:
    return desk.render("activity.html",
                       entries=await audit.recent(desk.operated.database, ACTIVITY))


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("not found", status_code=404)
    text = importlib.resources.files("invariant.console").joinpath("static", name).read_text()
    return Response(text, media_type=STATIC[name],
                    headers={"Cache-Control": "no-cache"})


def _login_form(locate: Locate, base: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        desk = Desk(request, locate(request), None, base)
        return desk.render("login.html", email="")

    return endpoint


def _log_in(locate: Locate, base: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        operated = locate(request)
        form = await read_form(request)
        why = forged(request, operated.secret, form)
        if why is not None or form is None:
            return Response(why or "the form could not be read", status_code=403)
        desk = Desk(request, operated, None, base)
        email = form.get("email", "")[:254]
        client = request.client.host if request.client else "unknown"
        try:
            token = await operated.gate.log_in(email, form.get("password", "")[:128], client)
        except LoginRefused as exc:
            await desk.audit("log in", email, f"refused: {exc}")
            return desk.render("login.html", 401, email=email, problem=str(exc))
        operator = await operated.gate.operator(token)
        desk.operator = operator
        await desk.audit("log in", email, "admitted" if operator and operator.admin
                         else "refused: not an admin")
        response = RedirectResponse(f"{base}/streams", status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            path=base, secure=request.url.scheme == "https")
        return response

    return endpoint


async def _log_out(desk: Desk) -> Response:
    await desk.audit("log out", "", "session ended")
    response = desk.redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path=desk.base)
    return response
