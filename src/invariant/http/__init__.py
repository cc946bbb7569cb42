"""The HTTP boundary: domain errors as RFC 9457 problem details (FastAPI)."""

from invariant.http.errors import MEDIA_TYPE, Problem, install_error_handlers, problem_for

__all__ = ["MEDIA_TYPE", "Problem", "install_error_handlers", "problem_for"]
