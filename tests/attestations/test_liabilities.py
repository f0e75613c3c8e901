"""The attestation carries each asset's liability snapshot (the tree the reserves were
measured against) and every tree file as a subject; the pages and the admin show it."""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audits import attestation_keys, attestations, reconciliation
from audits.core import verify as cli
from audits.models import Asset, LiabilityTree
from tests.reconciliation.liability_seed import publish

from .conftest import NOW, reconcile, statement_of, verify_both

UNIT = 10**18
AS_OF = NOW - timedelta(hours=2)


def with_tree_file(tmp_path, world, units=263 * UNIT):
    """A published snapshot whose tree row names a real file's digest, and that file."""
    snapshot, trees = publish({world.asset: units}, AS_OF)
    path = tmp_path / "tree.mst"
    path.write_bytes(b"por-mst-v1 stand-in tree file " + str(snapshot.pk).encode())
    tree = trees[world.asset.pk]
    LiabilityTree.objects.filter(pk=tree.pk).update(
        file_sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )
    tree.refresh_from_db()
    return snapshot, tree, path


def test_each_asset_names_its_liability_snapshot_and_the_tree_file_is_a_subject(
    world, key_file, tmp_path
):
    world.backed("1000")
    snapshot, tree, path = with_tree_file(tmp_path, world, units=263 * UNIT + 1)
    reconcile(world)
    attestation = attestations.issue("changed", NOW)
    statement = statement_of(attestation)
    (asset,) = statement["predicate"]["assets"]
    assert asset["liabilities"] == {
        "snapshot": snapshot.pk,
        "as_of": "2026-11-24T13:00:00Z",
        "root_hash": tree.root_hash,
        "root_sum": "263.000000000000000001",
        "root_sum_units": str(263 * UNIT + 1),
        "leaf_count": 4,
        "tree_sha256": tree.file_sha256,
    }
    name = f"liabilities-{snapshot.pk}-TSTx.mst"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects[name] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(subjects) == 3  # two statement files and the tree
    assert [name, tree.file_sha256] in attestation.subjects
    verify_both(attestation, attestation_keys.jwks(), key_file)

    # Offline: the tree file is recognised as evidence and the figures are printed.
    envelope = tmp_path / "envelope.json"
    envelope.write_text(attestation.envelope)
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(attestation_keys.jwks()))
    ok, lines = cli.attestation_report(
        {"attestation": str(envelope), "keys": str(keys), "previous": None,
         "evidence": [str(path)]}
    )  # fmt: skip
    assert ok, lines
    assert lines[-1] == "VALID"
    assert any(
        line.startswith('asset: "TSTx"') and 'liabilities "263.000000000000000001"' in line
        for line in lines
    ), lines
    assert (
        f'liabilities: "TSTx" snapshot {snapshot.pk} as_of "2026-11-24T13:00:00Z" '
        f'root_hash "{tree.root_hash}" root_sum_units "{263 * UNIT + 1}" leaf_count 4 '
        f'tree_sha256 "{tree.file_sha256}"'
    ) in lines
    assert f'evidence: "{path}" sha256:{tree.file_sha256} is subject "{name}"' in lines


def test_an_asset_without_a_snapshot_has_null_liabilities(world, key_file):
    world.backed()
    reconcile(world)
    Asset.objects.create(code="NEWx", name="New", isin="US5949181045")
    attestation = attestations.issue("changed", NOW)
    assets = {a["code"]: a for a in statement_of(attestation)["predicate"]["assets"]}
    assert assets["TSTx"]["liabilities"] is None and assets["NEWx"]["liabilities"] is None
    assert all(name.startswith("statement-") for name, _ in attestation.subjects)


def test_an_undercollateralized_asset_is_attested_as_such(world, key_file, tmp_path):
    world.backed("1000")
    with_tree_file(tmp_path, world, units=1200 * UNIT)
    reconcile(world)
    (asset,) = statement_of(attestations.issue("changed", NOW))["predicate"]["assets"]
    assert (asset["status"], asset["eligible"], asset["state"]) == (
        "undercollateralized", False, "frozen",
    )  # fmt: skip
    assert asset["liabilities"]["root_sum"] == "1200"


def test_building_the_predicate_with_liabilities_takes_the_same_queries(world, key_file):
    world.backed()
    reconcile(world)
    with CaptureQueriesContext(connection) as without:
        attestations.build_predicate(NOW)
    others = [
        Asset.objects.create(code=f"L{n}x", name=f"L{n}", isin=isin)
        for n, isin in enumerate(["US5949181045", "US67066G1040", "US78462F1030"])
    ]
    publish({world.asset: 5 * UNIT, **{a: 7 for a in others}}, AS_OF)
    reconciliation.reconcile_assets([world.asset.pk, *(a.pk for a in others)], now=NOW)
    with CaptureQueriesContext(connection) as more:
        predicate, subjects = attestations.build_predicate(NOW)
    assert len(more.captured_queries) == len(without.captured_queries) <= 5
    assert sum(1 for a in predicate["assets"] if a["liabilities"] is not None) == 4
    assert sum(1 for name, _ in subjects if name.startswith("liabilities-")) == 4


def _text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(body))


def test_pages_and_admin_show_users_balances_next_to_reserves(world, key_file, admin_client):
    world.backed("1000")
    snapshot, trees = publish({world.asset: 263 * UNIT}, AS_OF)
    tree = trees[world.asset.pk]
    result = reconcile(world)
    attestation = attestations.issue("changed", NOW)

    detail = _text(admin_client.get(reverse("public:attestation", args=[attestation.sequence])))
    assert "Users' balances (liabilities) 263 TSTx, snapshot #" in detail
    assert f"Snapshot #{snapshot.pk} as of 24 Nov 2026 13:00 UTC: users hold 263 TSTx" in detail
    assert f"liabilities-{snapshot.pk}-TSTx.mst" in detail

    home = _text(admin_client.get("/"))
    assert "Users' balances (liabilities) 263 TSTx, snapshot of 24 Nov" in home

    admin = _text(
        admin_client.get(
            reverse("admin:audits_reconciliation_change", args=[result.reconciliation_id])
        )
    )
    assert "Users' balances (liabilities, tokens): 263 " in admin
    assert "Coverage (reserves / liabilities): 3.80228136 " in admin
    assert (
        f"Liability snapshot: snapshot as of users' balances (smallest unit) accounts leaves "
        f"root hash tree file SHA-256 #{snapshot.pk} "
    ) in admin
    assert f" {263 * UNIT} 3 4 {tree.root_hash} {tree.file_sha256} " in admin
    assert "Recomputed from its evidence: matches" in admin
