"""Property-based API test: schemathesis generates requests from the studio's own OpenAPI schema (valid
and invalid ones) and runs them in-process against the ASGI app (auth on, an admin's key; SQLite and
PostgreSQL, a real Redis, no workers). No
answer may be a 5xx, and every answer must match the schema (status code, content type, headers, body).

Bounded for CI: `MAX_EXAMPLES` per operation, derandomized (the same examples every run). The only 5xx
allowed are the documented 503s that say no inference worker is running (chat, completions, estimates):
this test starts none on purpose.

Schemathesis' own pytest plugin (`@schema.parametrize()`) does not run under pytest 9 yet, so each
operation is one parametrized test driving hypothesis with the operation's strategy.
"""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from backend.app import create_app
from backend.db.session import Database
from backend.services import auth, estimates
from backend.settings import Settings
from tests.api.conftest import _empty_tables
from tests.api.jobs_support import redis_server  # noqa: F401 — fixture

MAX_EXAMPLES = 20
NO_WORKER_CODES = {"no_inference_worker", "worker_unavailable"}  # 503: nothing to run it on, by design here
# Not judged: 5xx (see `check`), and the two checks that expect the schema to be the whole validation —
# the studio also refuses schema-valid bodies for what the schema cannot say (a file that is not a
# dataset, a `method` whose block does not match its type, an alias that starts with a digit: 400), and
# like any FastAPI app it ignores query parameters it does not know.
EXCLUDED = [schemathesis.checks.not_a_server_error, schemathesis.checks.positive_data_acceptance,
            schemathesis.checks.negative_data_rejection]


def _operations() -> list[str]:
    with tempfile.TemporaryDirectory() as data_dir:
        paths = create_app(Settings(data_dir=data_dir), migrate=False).openapi()["paths"]
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]


@pytest.fixture(scope="module")
def studio(tmp_path_factory, redis_server, database_url):  # noqa: F811
    """(the schema bound to an app with auth on, an admin's headers), on SQLite and on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    url = database_url
    _empty_tables(url)
    app = create_app(Settings(data_dir=tmp / "data", database_url=url, redis_url=redis_server[1], auth="on",
                              relay_enabled=False, scheduler_enabled=False, inference_timeout_seconds=1.0),
                     migrate=False)
    database = Database(url)
    with database.session() as session:
        _row, key = auth.create_key(session=session, user="fuzz", is_admin=True)
    database.dispose()
    yield schemathesis.openapi.from_asgi("/openapi.json", app), {"Authorization": f"Bearer {key}"}
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()  # the transport keeps each app's lifespan open until told


def check(case, response, headers) -> None:
    if response.status_code == 503 and (response.json().get("error") or {}).get("code") in NO_WORKER_CODES:
        return
    assert response.status_code < 500, (f"{case.method} {case.formatted_path}: {response.status_code} "
                                        f"{response.text[:500]}")
    # 5xx are judged above; the rest (schema conformance, 401 for a missing or wrong key, …) here
    case.validate_response(response, excluded_checks=EXCLUDED, headers=headers)


@pytest.mark.parametrize("operation", _operations())
def test_the_api_answers_generated_requests_within_its_schema(studio, operation, monkeypatch):
    monkeypatch.setattr(estimates, "TIMEOUT_SECONDS", 1.0)  # an estimate waits this long for a worker
    schema, headers = studio
    api_operation = schema.find_operation_by_label(operation)
    assert api_operation is not None, operation
    cases = st.one_of(api_operation.as_strategy(GenerationMode.POSITIVE),
                      api_operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cases)
    def run(case):
        check(case, case.call(headers=headers), headers)

    run()
