"""The WSGI fast path for public proofs gives exactly Django's answer (status, headers, body)
for an existing proof, without Django, and leaves every other request to Django."""

from __future__ import annotations

from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from audits.fast_proofs import ProofFastPath
from tests.liabilities.trees import hash_of, publish

BALANCES = {"AAPLx": {"u-1": 12_000_000, "u-2": 3}, "MSFTx": {"u-1": 5}}


class Spy:
    """Django's WSGI application (made now: middleware reads its settings when it is made),
    counting the requests that reach it."""

    def __init__(self) -> None:
        self.calls = 0
        self.django = WSGIHandler()

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.django(environ, start_response)


def call(app, path: str, *, method="GET", query="", host="testserver", https=False):
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING=query, HTTP_HOST=host,
        SERVER_PORT="443" if https else "80",
    )  # fmt: skip
    environ["wsgi.url_scheme"] = "https" if https else "http"
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=headers)

    body = b"".join(app(environ, start_response))
    headers = {k.lower(): v for k, v in answer["headers"] if k.lower() != "date"}
    return answer["status"], headers, body


@pytest.fixture(autouse=True)
def _keep_the_test_database_open():
    """Django's WSGI handler closes "old" database connections at each request's start and
    end, which would close the test's own; its test client does the same as this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def proof_url(liability_storage, settings, db):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    snapshot = publish(BALANCES)
    return f"/api/v1/snapshots/{snapshot.pk}/proofs/{hash_of(snapshot, 'u-1')}"


def test_the_fast_answer_is_djangos_answer(proof_url):
    spy = Spy()
    app = ProofFastPath(spy)
    first = call(app, proof_url)  # through Django, which teaches the headers
    assert spy.calls == 1 and first[0] == "200 OK"
    second = call(app, proof_url)
    assert spy.calls == 1, "the second answer should not have reached Django"
    assert second == first
    assert "default-src 'self'" in first[1]["content-security-policy"]
    assert first[1]["x-content-type-options"] == "nosniff"
    assert first[1]["cache-control"] == "public, max-age=31536000, immutable"
    assert call(WSGIHandler(), proof_url) == first


@pytest.mark.parametrize(
    "change",
    [
        {"method": "POST"},
        {"method": "HEAD"},
        {"query": "x=1"},
        {"host": "evil.example"},
    ],
)
def test_anything_else_is_left_to_django(proof_url, change):
    spy = Spy()
    app = ProofFastPath(spy)
    call(app, proof_url)
    before = spy.calls
    assert call(app, proof_url, **change) == call(WSGIHandler(), proof_url, **change)
    assert spy.calls == before + 1


def test_unknown_hashes_and_other_spellings_get_djangos_answers(proof_url):
    spy = Spy()
    app = ProofFastPath(spy)
    call(app, proof_url)
    prefix, account_hash = proof_url.rsplit("/", 1)
    for path in (f"{prefix}/{'ab' * 32}", f"{prefix}/{account_hash.upper()}", f"{prefix}/zz"):
        before = spy.calls
        status, headers, body = call(app, path)
        assert spy.calls == before + 1, path
        assert (status, headers, body) == call(WSGIHandler(), path)
    assert call(app, f"{prefix}/{'ab' * 32}")[0].startswith("404")


def test_with_the_https_redirect_on_only_https_is_answered_fast(proof_url, settings):
    settings.SECURE_SSL_REDIRECT = True
    spy = Spy()
    app = ProofFastPath(spy)
    assert call(app, proof_url)[0].startswith("301")
    call(app, proof_url, https=True)
    calls = spy.calls
    status, headers, _ = call(app, proof_url, https=True)
    assert spy.calls == calls and status == "200 OK"
    assert "strict-transport-security" in headers  # as Django sends it over HTTPS
    assert call(app, proof_url)[0].startswith("301")


def test_the_served_application_has_the_fast_path():
    from porapp import wsgi

    assert isinstance(wsgi.application, ProofFastPath)
    assert wsgi.application.app is wsgi.django_application
