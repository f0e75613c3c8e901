"""A WSGI fast path for the public proof endpoint, `GET /api/v1/snapshots/{id}/proofs/{hash}`.

Why: a proof of a published snapshot never changes and is read by every user of a platform,
and Django's request cycle (middleware, URL resolution, DRF's view machinery) costs several
times what reading a proof from the tree file does: on two cores it alone caps the endpoint
near 4,000 answers a second, ~8 ms at 32 connections, whatever the proof costs
(docs/performance.md). So a successful proof answer skips it; everything else does not.

What it may answer, and how it stays the same answer Django gives:
- only GET, without a query string, of a path with a decimal id and 64 lower-case hex
  digits, whose Host is one of ALLOWED_HOSTS, on HTTPS when SECURE_SSL_REDIRECT is on;
- only when the proof exists (`liability_proofs.proofs_document`, the very bytes the API view
  serves); a 400, a 404, a redirect or an error is always Django's own answer;
- with the headers Django sent for this kind of answer: the first proof answer of each
  process (per scheme) goes through Django, and its headers (security headers, CSP,
  Cache-Control...) are kept for the next ones (tests compare the two).

Nothing here is authenticated because nothing needs to be: the endpoint is public, and only
the account's owner can compute an account hash (docs/proof-format.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest

from audits import liability_proofs

PROOF_PATH = re.compile(r"/api/v1/snapshots/([0-9]{1,18})/proofs/([0-9a-f]{64})")
# Per response, not per kind of response: never copied from the first answer.
_OWN = frozenset({"content-length", "date", "server"})

StartResponse = Callable[..., Any]


class ProofFastPath:
    """WSGI middleware around Django's application (porapp/wsgi.py)."""

    def __init__(self, app: Callable[[dict, StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.headers: dict[bool, list[tuple[str, str]]] = {}  # by "is the request secure"

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        found = self._proof_request(environ)
        if found is None:
            return self.app(environ, start_response)
        secure, snapshot_id, account_hash = found
        headers = self.headers.get(secure)
        if headers is None:
            return self._learn(environ, start_response, secure)
        body = liability_proofs.proofs_document(snapshot_id, account_hash)
        if body is None:  # not in this snapshot: Django's 404
            return self.app(environ, start_response)
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _proof_request(self, environ: dict) -> tuple[bool, int, str] | None:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return None
        match = PROOF_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        request = WSGIRequest(environ)
        try:
            request.get_host()  # ALLOWED_HOSTS, exactly as Django checks it
        except DisallowedHost:
            return None
        secure = request.is_secure()  # honours SECURE_PROXY_SSL_HEADER
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        return secure, int(match.group(1)), match.group(2)

    def _learn(self, environ: dict, start_response: StartResponse, secure: bool):
        """Answer through Django, and keep the headers of a successful proof answer."""

        def capture(status: str, headers: list[tuple[str, str]], exc_info=None):
            if status.startswith("200 "):
                self.headers[secure] = [(k, v) for k, v in headers if k.lower() not in _OWN]
            return start_response(status, headers, exc_info)

        return self.app(environ, capture)
