"""The HTTP boundary: domain errors as RFC 9457 problem details (FastAPI), a cap on
request bodies, intake refused while background work is behind, and the resilient client for
other services' HTTP APIs (one instance, or several called in turn)."""

from invariant.extras import needs_extra

with needs_extra("http"):
    from invariant.http.backpressure import Backpressure
    from invariant.http.client import HttpService, ServiceClient
    from invariant.http.errors import MEDIA_TYPE, Problem, install_error_handlers, problem_for
    from invariant.http.limits import BodyLimit, BodyTooLarge
    from invariant.http.replicas import Replicas

__all__ = ["MEDIA_TYPE", "Backpressure", "BodyLimit", "BodyTooLarge", "HttpService", "Problem",
           "Replicas", "ServiceClient", "install_error_handlers", "problem_for"]
