"""The HTTP boundary: domain errors as RFC 9457 problem details (FastAPI), a cap on
request bodies, and intake refused while background work is behind."""

from invariant.extras import needs_extra

with needs_extra("http"):
    from invariant.http.backpressure import Backpressure
    from invariant.http.errors import MEDIA_TYPE, Problem, install_error_handlers, problem_for
    from invariant.http.limits import BodyLimit, BodyTooLarge

__all__ = ["MEDIA_TYPE", "Backpressure", "BodyLimit", "BodyTooLarge", "Problem",
           "install_error_handlers", "problem_for"]
