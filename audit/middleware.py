"""Remember the client's address for the request, so every ``audit_record`` made while it
is handled has it, also from services that never see the request (models_admin's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.utils.decorators import sync_and_async_middleware

from .services import client_address, current_address


@sync_and_async_middleware
def request_address(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> Any:
            token = current_address.set(client_address(request))
            try:
                return await get_response(request)
            finally:
                current_address.reset(token)

        return async_middleware

    def middleware(request: HttpRequest) -> Any:
        token = current_address.set(client_address(request))
        try:
            return get_response(request)
        finally:
            current_address.reset(token)

    return middleware


__all__ = ["current_address", "request_address"]
