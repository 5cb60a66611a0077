"""The 500 handler: "the database is unreachable" gets its own 503 page instead of a 500.

Under ASGI Django builds the error response in a worker thread, where the exception is no
longer visible (``sys.exc_info()`` is empty there), so a 500 is checked the direct way: can a
connection to the database be opened now, within two seconds? If not, the person sees "try
again in a moment" with status 503 and Retry-After, and load balancers see a retryable status.
API paths get the same answer as JSON in their protocol's shape. No stack trace either way.
"""

from __future__ import annotations

import re
import sys

import psycopg
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

from webio.outages import API_UNAVAILABLE_MESSAGE, RETRY_AFTER_SECONDS, is_outage

_API_PATH = re.compile(settings.API_PATH_REGEX)


def database_reachable(timeout: int = 2) -> bool:
    """Whether a new connection to the default database opens within ``timeout`` seconds
    (PostgreSQL; a local SQLite file is always there). Not through the pool: while the server
    is down, taking a pooled connection waits the pool's whole timeout."""
    db = connections["default"]
    if db.vendor != "postgresql":
        return True
    params = db.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    try:
        psycopg.connect(**params, connect_timeout=timeout, autocommit=True).close()
    except psycopg.Error:
        return False
    return True


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 "try again", as a page or, on API paths, as the API's JSON."""
    response: HttpResponse
    if _API_PATH.match(request.path):
        if "/v1/" in request.path:
            body: dict[str, object] = {
                "error": {"message": API_UNAVAILABLE_MESSAGE, "type": "api_error", "param": None, "code": "service_unavailable"}
            }
        else:
            body = {"error": API_UNAVAILABLE_MESSAGE}
        response = JsonResponse(body, status=503)
    else:
        # Rendered without a request context: the session, the user and the context
        # processors all need the database.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    exc = sys.exc_info()[1]  # set when Django runs this in the thread that caught it
    if (exc is not None and is_outage(exc)) or not database_reachable():
        return unavailable_response(request)
    return defaults.server_error(request)
