"""Which failures mean "a service the platform needs is briefly unreachable".

PostgreSQL restarting or failing over, Redis restarting: the request itself was fine and the
same request will work in a moment. Such failures are answered 503 with Retry-After (pages,
API) or with close code 4503 "try again later" (sockets), never with a stack trace, and the
clients retry. Everything else stays an ordinary server error.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: WebSocket close code for "try again later": the browser reconnects (only 4401, 4403 and
#: 4404 end its retries). Not the registry's 1013: autobahn, under daphne, lets an application
#: close only with 1000 or 3000-4999 (it turns anything else into 1011), so the platform's
#: own range mirrors HTTP: 4503.
CLOSE_TRY_AGAIN = 4503
#: Seconds a client is asked to wait (Retry-After) while a service is unreachable.
RETRY_AFTER_SECONDS = 5
#: What the API says then (protocol text, in English, as clients match on it).
API_UNAVAILABLE_MESSAGE = "the service is temporarily unavailable (its database cannot be reached); try again shortly"

_UNREACHABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a database or Redis connection failure."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:  # a short cause chain: wrapped driver errors
        if isinstance(current, _UNREACHABLE):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False
