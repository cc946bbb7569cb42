"""The HTTP boundary: domain errors as RFC 9457 problem details (FastAPI), and a cap on
request bodies."""

from invariant.extras import needs_extra

with needs_extra("http"):
    from invariant.http.errors import MEDIA_TYPE, Problem, install_error_handlers, problem_for
    from invariant.http.limits import BodyLimit, BodyTooLarge

__all__ = ["MEDIA_TYPE", "BodyLimit", "BodyTooLarge", "Problem", "install_error_handlers",
           "problem_for"]
