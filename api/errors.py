"""API errors and how each protocol puts them on the wire."""

from __future__ import annotations

from enum import Enum
from typing import Any

from django.http import JsonResponse

from webio.outages import API_UNAVAILABLE_MESSAGE, RETRY_AFTER_SECONDS


class Protocol(str, Enum):
    OLLAMA = "ollama"
    OPENAI = "openai"


class ApiError(Exception):
    """A refused request. Messages are protocol text, in English, as clients match on them."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def model_not_found(name: str) -> ApiError:
    # The same answer for a missing model and one the caller may not use, so names don't leak.
    return ApiError(404, f"model '{name}' not found", code="model_not_found", param="model")


def unavailable() -> ApiError:
    """503 with Retry-After: the database or Redis is unreachable for a moment."""
    return ApiError(
        503,
        API_UNAVAILABLE_MESSAGE,
        code="service_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(protocol: Protocol, error: ApiError) -> dict[str, Any]:
    if protocol is Protocol.OLLAMA:
        return {"error": error.message}
    return {
        "error": {
            "message": error.message,
            "type": _OPENAI_TYPES.get(error.status, "api_error"),
            "param": error.param,
            "code": error.code,
        }
    }


def error_response(protocol: Protocol, error: ApiError) -> JsonResponse:
    response = JsonResponse(error_body(protocol, error), status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    for name, value in error.headers.items():
        response[name] = value
    return response
