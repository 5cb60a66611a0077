"""The 500 handler: a 503 "try again" in each door's own shape when the database is away, an
ordinary 500 when it is not (a bug must not be reported as an outage)."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from health.errors import server_error, unavailable_response
from webio.outages import API_UNAVAILABLE_MESSAGE


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/tags", {"error": API_UNAVAILABLE_MESSAGE}),
        ("/v1/models", {"error": {"message": API_UNAVAILABLE_MESSAGE, "type": "api_error", "param": None, "code": "service_unavailable"}}),
    ],
)
def test_api_paths_get_json_in_their_protocols_shape(path: str, body: dict[str, object]) -> None:
    response = unavailable_response(RequestFactory().get(path))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert json.loads(response.content) == body


def test_pages_get_the_503_page_without_a_request_context() -> None:
    response = unavailable_response(RequestFactory().get("/settings/keys/"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "The service is briefly unavailable" in response.content.decode()


@pytest.mark.django_db
def test_a_500_with_the_database_reachable_stays_a_500() -> None:
    assert server_error(RequestFactory().get("/")).status_code == 500
