"""A statement sent as semt.002 pages has no bytes of its own: each page's file is a subject."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from audits import attestations, statements
from audits.models import Asset, CustodianStatement

from .conftest import reconcile

PAGES = Path(__file__).parent.parent / "statements" / "samples"
LATER = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_each_page_of_a_joined_statement_is_a_subject(world, key_file):
    for code, isin in (("NVDAx", "US67066G1040"), ("SPYx", "US78462F1030"),
                       ("CSPXx", "IE00B5BMR087")):  # fmt: skip
        Asset.objects.create(code=code, name=code, isin=isin)
    raws = [(PAGES / f"semt002_3_pages_p{n}.xml").read_bytes() for n in (1, 2, 3)]
    for raw in raws:
        submission = statements.submit_statement(
            custodian=world.custodians[0], user=world.admin, raw=raw, fmt="semt002", as_of=None
        )
    joined = submission.statement
    assert joined.status == "accepted" and joined.raw_id is None
    world.supply(0, "60000", as_of=LATER)
    world.supply(1, "60000", as_of=LATER)
    reconcile(world, LATER)
    attestation = attestations.issue("changed", LATER)
    asset = next(
        a for a in attestations.statement_of(attestation)["predicate"]["assets"]
        if a["code"] == "TSTx"
    )  # fmt: skip
    (entry,) = asset["statements"]
    pages = CustodianStatement.objects.filter(part_of=joined).order_by("page_no")
    expected = [
        {"name": f"statement-{p.pk}.semt002", "sha256": hashlib.sha256(raw).hexdigest()}
        for p, raw in zip(pages, raws, strict=True)
    ]
    assert entry["id"] == joined.pk and entry["files"] == expected
    assert entry["as_of"] == "2026-11-24T21:00:00Z"
    assert attestation.subjects == sorted([f["name"], f["sha256"]] for f in expected)


def test_building_the_predicate_takes_the_same_queries_for_more_assets(world, key_file):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    world.backed()
    reconcile(world)
    with CaptureQueriesContext(connection) as one:
        attestations.build_predicate(LATER)
    for n in range(3):
        Asset.objects.create(code=f"MORE{n}", name=f"More {n}", isin=f"US00000000{n}0")
    with CaptureQueriesContext(connection) as more:
        predicate, _ = attestations.build_predicate(LATER)
    assert len(predicate["assets"]) == 4
    assert len(more.captured_queries) == len(one.captured_queries) <= 5
