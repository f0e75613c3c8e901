"""The snapshot admin: list with badges and progress, detail with errors and trees, upload."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audits import liabilities
from audits.models import LiabilitySnapshot, PlatformOperator
from tests.liabilities.conftest import AS_OF, GOOD

BAD = b"account_id,asset,balance\nu-1,AAPLx,1\nu-2,ZZZx,1\n"


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def two(operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        good, _ = liabilities.receive(user=operator, chunks=[GOOD], as_of=AS_OF)
        bad, _ = liabilities.receive(user=operator, chunks=[BAD], as_of=AS_OF)
    return liabilities.build(good.pk), liabilities.build(bad.pk)


@pytest.mark.django_db
def test_list_and_detail(admin_client_, two):
    good, bad = two
    page = admin_client_.get("/admin/audits/liabilitysnapshot/").content.decode()
    assert '<span class="por-badge por-published">Published</span>' in page
    assert '<span class="por-badge por-rejected">Rejected</span>' in page
    detail = admin_client_.get(f"/admin/audits/liabilitysnapshot/{good.pk}/change/")
    text = detail.content.decode()
    tree = good.trees.get(asset__code="AAPLx")
    assert tree.root_hash in text and str(int(tree.root_sum)) in text
    for snapshot in (good, bad):
        body = admin_client_.get(f"/admin/audits/liabilitysnapshot/{snapshot.pk}/change/").content
        assert bytes(snapshot.secret).hex().encode() not in body
        assert b"secret" not in body.lower()
    text = admin_client_.get(f"/admin/audits/liabilitysnapshot/{bad.pk}/change/").content.decode()
    assert "<td>3</td><td><code>asset</code></td><td>unknown asset &#x27;ZZZx&#x27;</td>" in text


@pytest.mark.django_db
def test_upload_in_the_admin(admin_client_, demo, django_capture_on_commit_callbacks):
    form = admin_client_.get("/admin/audits/liabilitysnapshot/add/", follow=True)
    assert form.status_code == 200 and b"Upload a liability snapshot" in form.content
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_client_.post(
            "/admin/audits/liabilitysnapshot/upload/",
            {"file": SimpleUploadedFile("b.csv", GOOD), "as_of": "2026-11-24T21:00:00Z"},
        )
    snapshot = LiabilitySnapshot.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{snapshot.pk}/change/")
    assert len(queued) == 1 and snapshot.status == "received"
    refused = admin_client_.post(
        "/admin/audits/liabilitysnapshot/upload/",
        {"file": SimpleUploadedFile("b.csv", GOOD), "as_of": "2026-11-24T21:00:00"},
    )
    assert refused.status_code == 200 and b"no UTC offset" in refused.content
    assert LiabilitySnapshot.objects.count() == 1


@pytest.mark.django_db
def test_snapshots_are_not_edited_or_deleted(admin_client_, two):
    good, _ = two
    url = f"/admin/audits/liabilitysnapshot/{good.pk}/delete/"
    assert admin_client_.post(url, {"post": "yes"}).status_code == 403
    assert LiabilitySnapshot.objects.filter(pk=good.pk).exists()


@pytest.mark.django_db
def test_operator_role_refuses_a_custodian_user(admin_client_, owner, django_user_model):
    url = "/admin/audits/platformoperator/add/"
    refused = admin_client_.post(url, {"user": owner.pk})
    assert refused.status_code == 200 and b"acts for a custodian" in refused.content
    assert not PlatformOperator.objects.exists()
    plain = django_user_model.objects.create_user("platform", "p@example.com", "pw")
    assert admin_client_.post(url, {"user": plain.pk}).status_code == 302
    assert PlatformOperator.objects.filter(user=plain).exists()
    # An operator can now be given an API token in the admin.
    token_form = admin_client_.get("/admin/audits/apitoken/add/").content.decode()
    assert f'<option value="{plain.pk}">platform</option>' in token_form


@pytest.mark.django_db
def test_admin_builds_a_failed_snapshot_again(
    admin_client_, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = liabilities.receive(user=operator, chunks=[GOOD], as_of=AS_OF)
    LiabilitySnapshot.objects.filter(pk=snapshot.pk).update(
        status="failed", attempts=3, failure="the build was interrupted 3 times"
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_client_.post(
            "/admin/audits/liabilitysnapshot/",
            {"action": "retry_failed", "_selected_action": [snapshot.pk]},
        )
    assert response.status_code == 302 and len(queued) == 1
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.attempts, snapshot.failure) == ("received", 0, "")
    assert liabilities.build(snapshot.pk).status == "published"
