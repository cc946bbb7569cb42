"""The operator's web console: a FastAPI router any application mounts.

``app.include_router(console_router(locate))`` serves, under ``/console``, the streams,
the global log, projections, processes and messaging of the application ``locate(request)``
describes (an :class:`Operated`), for the admins of its own accounts (its :class:`Gate`).
Pages are rendered on the server (Jinja2); the one small script and style sheet ship in
this package. Every form carries a CSRF token; every action is logged and audited.
"""

from invariant.extras import needs_extra

with needs_extra("console"):
    from invariant.console.gate import Gate, LoginRefused, Operator
    from invariant.console.operated import Operated
    from invariant.console.router import console_router

__all__ = ["Gate", "LoginRefused", "Operated", "Operator", "console_router"]
