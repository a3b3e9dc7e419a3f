"""Property-based fuzzing of the whole API from its own OpenAPI schema (schemathesis), against
the real server: no 5xx, documented statuses and content types, responses that match the schema,
and every error in the problem shape (under /v2, in the protocol's {"error": ...})."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness.server import running_server

PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}
EXAMPLES_PER_OPERATION = 100


def errors_are_problems(ctx, response, case) -> None:
    if response.status_code < 400:
        return
    if case.path.startswith("/v2"):
        assert response.headers["content-type"][0] == "application/json", response.headers
        assert set(response.json()) == {"error"}, response.text
    else:
        assert response.headers["content-type"][0] == "application/problem+json", response.headers
        assert PROBLEM_FIELDS <= set(response.json()), response.text


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    errors_are_problems,
]


@pytest.fixture(scope="module")
def operations():
    with running_server(None) as server:  # the bundled repository: every route, per-model ones included
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        yield [result.ok() for result in schema.get_all_operations()]


def test_api_holds_its_contract(operations):
    # schemathesis's pytest plugin does not run under this pytest; hypothesis drives it directly.
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same cases on every CI run: a failure reproduces
        )
        def holds(case):
            nonlocal calls
            case.call_and_validate(checks=CHECKS)
            calls += 1

        holds()
    print(f"\n  fuzzed {len(operations)} operations with {calls} generated requests")
    assert calls >= len(operations)
