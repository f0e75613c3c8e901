"""The public attestation pages: the list (paginated, empty state), the detail (the signed
figures, the chain links), and downloads byte-identical to what is stored."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client

from audits import attestations
from audits.models import Attestation
from audits.public import views
from tests.attestations.conftest import NOW, key_file, reconcile, world  # noqa: F401

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's text with tags dropped and whitespace collapsed, entities decoded."""
    body = response.content.decode()
    body = re.sub(r"<[^>]+>", " ", body)
    body = re.sub(r"\s+", " ", html.unescape(body))
    return re.sub(r"\s+([),.;:])", r"\1", re.sub(r"\(\s+", "(", body))


@pytest.fixture
def issued(world, key_file):  # noqa: F811
    world.backed()
    reconcile(world)
    return [
        attestations.issue("changed", NOW),
        attestations.issue("heartbeat", NOW + timedelta(days=1)),
        attestations.issue("heartbeat", NOW + timedelta(days=2)),
    ]


def test_empty_list_says_so_in_plain_words(client: Client):
    response = client.get("/attestations/")
    assert response.status_code == 200
    assert "No attestation has been issued yet." in text(response)
    assert "<table" not in response.content.decode()


def test_list_shows_number_time_reason_key_and_evidence_count(client, issued):
    response = client.get("/attestations/")
    rows = re.findall(r"<tr>(.*?)</tr>", response.content.decode(), re.S)[1:]
    assert len(rows) == 3
    first = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", rows[-1])).strip()
    kid = issued[0].key.kid
    assert first == f"#1 24 Nov 2026 15:00:00 Status or eligibility changed {kid} 2"
    assert 'href="/attestations/3/"' in rows[0]
    assert "Older attestations" not in text(response)


def test_list_paginates_without_decoding_payloads(
    client, issued, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    with django_assert_max_num_queries(3):
        first = client.get("/attestations/")
    assert "#3" in text(first) and "#2" in text(first) and "#1 " not in text(first)
    assert 'href="?page=2" rel="next">Older attestations' in first.content.decode()
    assert "Page 1 of 2" in text(first)
    second = client.get("/attestations/?page=2")
    assert "#1" in text(second) and "#2" not in text(second)
    assert 'href="?page=1" rel="prev">Newer attestations' in second.content.decode()


def test_detail_shows_the_signed_figures(client, issued):
    attestation = issued[1]
    predicate = attestations.statement_of(attestation)["predicate"]
    (asset,) = predicate["assets"]
    response = client.get("/attestations/2/")
    assert response.status_code == 200
    page = text(response)
    assert "Issued 25 Nov 2026 15:00:00 UTC" in page
    assert "Evidence as of 23 Nov 2026 21:00 UTC" in page
    assert "Why issued Heartbeat" in page
    assert f"Signed by key {attestation.key.kid} (published keys)" in page
    assert 'href="/.well-known/jwks.json"' in response.content.decode()
    assert f"Previous #1, whose payload digest is {predicate['previous']}" in page
    assert predicate["previous"] == "sha256:" + issued[0].payload_sha256
    assert "Next #3" in page
    assert asset["code"] == "TSTx" and f"ISIN {asset['isin']}" in page
    assert asset["status"] == "healthy" and "Status Healthy: fully backed" in page
    assert "Collateral Frozen" in page  # one healthy run: not yet approved
    assert f"Reserves {asset['reserves']} tokens' worth" in page
    assert f"Supply {asset['supply']} tokens" in page
    assert asset["ratio"] == "1" and "Backing ratio 100 %" in page
    assert f"Shares per token {asset['multipliers'][0]}" in page
    for statement in asset["statements"]:
        for f in statement["files"]:
            assert f"File {f['name']}, SHA-256 {f['sha256']}" in page
    assert "Alpha Custody, statement" in page and "as of 23 Nov 2026 21:00 UTC" in page
    for reading in asset["supply_readings"]:
        assert f"Chain id {reading['chain_id']}, token {reading['token']}:" in page
        assert reading["source"] == "manual"
    assert page.count("issuer-reported figure") == 2
    for name, digest in attestation.subjects:
        assert f"{name} {digest}" in page
    assert (
        "python -m audits.verify --attestation porapp-attestation-2.dsse.json "
        "--keys jwks.json --previous porapp-attestation-1.dsse.json" in page
    )
    body = response.content.decode()
    assert 'id="verify-box"' in body and 'id="verify-button"' in body
    assert 'data-previous-url="/attestations/1/envelope.json"' in body
    assert 'style="' not in body


def test_first_and_latest_have_no_previous_or_next(client, issued):
    first = text(client.get("/attestations/1/"))
    assert "Previous none: this is the first attestation" in first
    assert "--previous" not in first
    assert "Next none yet: this is the latest" in text(client.get("/attestations/3/"))


@pytest.mark.parametrize(
    ("suffix", "content_type", "filename"),
    [
        ("envelope.json", "application/json", "porapp-attestation-2.dsse.json"),
        ("payload.json", "application/vnd.in-toto+json", "porapp-attestation-2.payload.json"),
    ],
)
def test_downloads_are_the_stored_bytes(client, issued, suffix, content_type, filename):
    stored = Attestation.objects.get(sequence=2)
    response = client.get(f"/attestations/2/{suffix}")
    assert response.status_code == 200
    expected = stored.envelope.encode() if suffix == "envelope.json" else bytes(stored.payload)
    assert response.content == expected
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path", ["/attestations/9/", "/attestations/9/envelope.json", "/attestations/9/payload.json"]
)
def test_unknown_number_is_a_404(client, issued, path):
    assert client.get(path).status_code == 404


def test_latest_redirects_to_the_newest(client, issued):
    assert client.get("/attestations/latest/")["Location"] == "/attestations/3/"
