"""The demo's liability snapshot: the platform operator's upload of the demo users' balances
goes through the real service, and alice's bundle verifies offline against a signed
attestation that states the trees' roots; a changed balance does not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audits import attestation_keys, attestations
from audits.demo import (
    ensure_operator,
    publish_demo_liabilities,
    start_healthy,
)
from audits.models import LiabilitySnapshot, LiabilityTree
from tests.attestations.conftest import key_file  # noqa: F401 (fixture)
from tests.demo_evidence import report_demo_evidence

pytestmark = pytest.mark.django_db


def verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audits.verify", *map(str, args)], capture_output=True, text=True
    )


def test_the_demo_bundle_verifies_against_the_attestation(
    demo,
    admin_user,
    key_file,  # noqa: F811
    tmp_path,
):
    operator = ensure_operator(tmp_path / "platform.txt")
    report_demo_evidence(admin_user)
    from django.contrib.auth import get_user_model

    platform = get_user_model().objects.get(username=operator.username)
    path = publish_demo_liabilities(platform, tmp_path)
    snapshot_as_of = LiabilitySnapshot.objects.get().as_of
    # Again: the same evidence finds the same snapshot, already published.
    assert publish_demo_liabilities(platform, tmp_path, as_of=snapshot_as_of) == path
    assert LiabilitySnapshot.objects.get().status == "published"
    aapl = LiabilityTree.objects.get(asset__code="AAPLx")
    assert aapl.root_sum == 263 * 10**18 and aapl.account_count == 3

    assert all(line.endswith("eligible (approved by admin)") for line in start_healthy(admin_user))
    attestation = attestations.issue("changed")
    envelope = tmp_path / "attestation.json"
    envelope.write_text(attestation.envelope)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(attestation_keys.jwks()))

    good = verify(path, "--attestation", envelope, "--keys", jwks)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.strip().endswith("VALID")
    assert "AAPLx" in good.stdout and "263" in good.stdout

    bundle = json.loads(path.read_text())
    first = bundle["proofs"][0]
    first["leaf"]["balances"][0] = str(int(first["leaf"]["balances"][0]) + 1)
    path.write_text(json.dumps(bundle))
    tampered = verify(path, "--attestation", envelope, "--keys", jwks)
    assert tampered.returncode == 1 and "INVALID" in tampered.stdout
