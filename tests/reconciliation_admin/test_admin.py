"""The admin of reconciliations and collateral eligibility, through the Django test client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.test import override_settings

from audits import eligibility
from audits.models import Eligibility, EligibilityEvent, MultiplierChange, Reconciliation
from audits.reconciliation import reconcile_assets

pytestmark = pytest.mark.django_db

ELIGIBILITY_URL = "/admin/audits/eligibility/"


def run(asset, times: int = 1) -> Reconciliation:
    for _ in range(times):
        (result,) = reconcile_assets([asset.pk])
    return Reconciliation.objects.get(pk=result.reconciliation_id)


def act(client, action: str, asset, reason: str | None):
    """Post an eligibility action for ``asset``; ``reason`` None stops at the confirmation page."""
    row = Eligibility.objects.get(asset=asset)
    data = {"action": action, "_selected_action": [row.pk]}
    if reason is not None:
        data |= {"apply": "1", "reason": reason}
    return client.post(ELIGIBILITY_URL, data, follow=reason is not None)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_reconciliation_list_and_detail(admin_client, asset, evidence):
    evidence("1100")  # 1000 tokens of reserves for 1100 in circulation: a breach
    breach = run(asset)
    evidence("1000")
    healthy = run(asset)
    assert (breach.status, healthy.status) == ("breach", "healthy")

    page = admin_client.get("/admin/audits/reconciliation/").content.decode()
    assert '<span class="por-badge por-breach">Breach</span>' in page
    assert '<span class="por-badge por-healthy">Healthy</span>' in page
    assert "porapp/admin.css" in page
    assert 'style="' not in page.split('id="result_list"')[1].split("</table>")[0]

    filtered = admin_client.get("/admin/audits/reconciliation/?status__exact=breach")
    assert f"/admin/audits/reconciliation/{breach.pk}/change/" in filtered.content.decode()
    assert f"/admin/audits/reconciliation/{healthy.pk}/change/" not in filtered.content.decode()

    detail = admin_client.get(f"/admin/audits/reconciliation/{breach.pk}/change/")
    body = detail.content.decode()
    assert detail.status_code == 200
    assert "Recomputed from its evidence: matches" in body
    assert breach.reason in body
    statement_id = breach.statement_links.get().statement_id
    assert f"/admin/audits/custodianstatement/{statement_id}/change/" in body
    assert "Northwind Custody Bank" in body
    assert "1100" in body  # the reading's circulating supply
    assert "healthy_runs_to_unfreeze" in body  # the policy as applied
    assert 'name="_save"' not in body  # read-only


def test_detail_lists_differences_when_evidence_changed(admin_client, asset, evidence, admin_user):
    rec = run(asset)
    # A multiplier change backdated before the statement's as-of: the stored result no
    # longer follows from the history.
    MultiplierChange.objects.create(
        asset=asset,
        effective_at=rec.computed_at.replace(year=2000),
        shares_per_token=Decimal(2),
        created_by=admin_user,
    )
    body = admin_client.get(f"/admin/audits/reconciliation/{rec.pk}/change/").content.decode()
    assert "Recomputed from its evidence: matches" not in body
    assert "Recomputed from its evidence: differs" in body
    assert f"statement {rec.statement_links.get().statement_id}: multiplier stored 1" in body
    assert "reserves: stored 1000" in body


def test_reconciliations_have_no_add_change_or_delete(admin_client, asset, evidence):
    rec = run(asset)
    assert admin_client.get("/admin/audits/reconciliation/add/").status_code == 403
    url = f"/admin/audits/reconciliation/{rec.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        "/admin/audits/reconciliation/",
        {"action": "delete_selected", "_selected_action": [rec.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert Reconciliation.objects.filter(pk=rec.pk).exists()
    page = admin_client.get("/admin/audits/reconciliation/").content.decode()
    assert "/admin/audits/reconciliation/add/" not in page


def test_eligibility_list_shows_every_asset(admin_client, asset, evidence):
    run(asset, 2)
    page = admin_client.get(ELIGIBILITY_URL).content.decode()
    # The demo assets were never reconciled: they are listed too, frozen.
    assert {"NVDAx", "AAPLx", "MSFTx", "SPYx", "QQQx"} <= set(
        Eligibility.objects.values_list("asset__code", flat=True)
    )
    assert "AAPLx" in page and "new asset: no reconciliation yet" in page
    assert '<span class="por-badge por-frozen">Frozen</span>' in page
    assert "2 / 3: 2 of 3 healthy runs" in page
    assert "Freeze selected assets" in page and "Approve unfreeze" in page


def test_approve_unfreeze_refused_until_enough_healthy_runs(admin_client, asset, evidence):
    run(asset, 2)
    confirm = act(admin_client, "approve_unfreeze", asset, None)
    assert confirm.status_code == 200
    assert b'name="reason"' in confirm.content and b"NVDAx" in confirm.content

    refused = act(admin_client, "approve_unfreeze", asset, "evidence looks good")
    assert any("NVDAx: Only 2 consecutive healthy" in m for m in texts(refused))
    assert Eligibility.objects.get(asset=asset).state == "frozen"
    assert not EligibilityEvent.objects.filter(asset=asset).exists()

    run(asset)
    done = act(admin_client, "approve_unfreeze", asset, "three healthy runs")
    row = Eligibility.objects.get(asset=asset)
    assert row.state == "eligible", texts(done)
    event = EligibilityEvent.objects.get(asset=asset)
    assert event.to_state == "eligible" and "three healthy runs" in event.reason


def test_reason_is_required(admin_client, asset, evidence):
    run(asset, 3)
    response = act(admin_client, "approve_unfreeze", asset, "   ")
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert Eligibility.objects.get(asset=asset).state == "frozen"


def test_manual_freeze_with_reason(admin_client, asset, evidence, admin_user, second_admin):
    run(asset, 3)
    eligibility.approve_unfreeze(asset.pk, second_admin, "ready")

    act(admin_client, "freeze_selected", asset, "custodian under investigation")
    row = Eligibility.objects.select_related("frozen_by").get(asset=asset)
    assert (row.state, row.frozen_by, row.frozen_manually) == ("frozen", admin_user, True)
    event = EligibilityEvent.objects.filter(asset=asset).latest("seq")
    assert event.actor == admin_user and event.event_type == "eligibility.frozen"
    assert "custodian under investigation" in event.reason

    # The change page shows the history, newest first.
    body = admin_client.get(f"{ELIGIBILITY_URL}{row.pk}/change/").content.decode()
    assert body.index("custodian under investigation") < body.index("Unfreeze approved")

    # Freezing what is already frozen is refused with the reason, nothing recorded.
    again = act(admin_client, "freeze_selected", asset, "twice")
    assert any("already frozen" in m for m in texts(again))
    assert EligibilityEvent.objects.filter(asset=asset).count() == 2


@override_settings(UNFREEZE_APPROVER_MUST_DIFFER=True)
def test_admin_who_froze_cannot_approve(client, admin_client, asset, evidence, second_admin):
    run(asset, 3)
    act(admin_client, "approve_unfreeze", asset, "ready")
    act(admin_client, "freeze_selected", asset, "checking a corporate action")
    run(asset, 3)

    refused = act(admin_client, "approve_unfreeze", asset, "done checking")
    assert any("cannot approve its unfreeze" in m for m in texts(refused))
    assert Eligibility.objects.get(asset=asset).state == "frozen"

    client.force_login(second_admin)
    act(client, "approve_unfreeze", asset, "checked by a second admin")
    row = Eligibility.objects.get(asset=asset)
    assert row.state == "eligible" and row.frozen_by is None
    assert EligibilityEvent.objects.filter(asset=asset).latest("seq").actor == second_admin


def test_events_are_read_only(admin_client, asset, evidence, second_admin):
    run(asset, 3)
    event = eligibility.approve_unfreeze(asset.pk, second_admin, "ready")
    page = admin_client.get(f"/admin/audits/eligibilityevent/?asset__id__exact={asset.pk}")
    assert f"/admin/audits/eligibilityevent/{event.pk}/change/" in page.content.decode()
    assert admin_client.get("/admin/audits/eligibilityevent/add/").status_code == 403
    url = f"/admin/audits/eligibilityevent/{event.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert admin_client.get(f"{ELIGIBILITY_URL}add/").status_code == 403


def _asset_form(asset, **multiplier) -> dict:
    return {
        "code": asset.code, "name": asset.name, "isin": asset.isin, "kind": asset.kind,
        "mic": asset.mic, "decimals": asset.decimals, "quantity_decimals": asset.quantity_decimals,
        "shares_per_token": "1", "active": "on",
        "deployments-TOTAL_FORMS": "0", "deployments-INITIAL_FORMS": "0",
        "policy-TOTAL_FORMS": "0", "policy-INITIAL_FORMS": "0",
        "multiplier_changes-TOTAL_FORMS": "1", "multiplier_changes-INITIAL_FORMS": "0",
        **{f"multiplier_changes-0-{k}": v for k, v in multiplier.items()},
    }  # fmt: skip


def test_multiplier_change_added_through_asset_inline(admin_client, asset, admin_user):
    url = f"/admin/audits/asset/{asset.pk}/change/"
    form = admin_client.get(url).content.decode()
    assert 'name="mic"' in form
    assert "Consecutive healthy reconciliations needed" in form  # policy inline, help shown
    assert 'name="policy-0-healthy_runs_to_unfreeze" value="3"' in form  # defaults shown

    change = {"effective_at_0": "2026-06-10", "effective_at_1": "14:30:00",
              "shares_per_token": "2", "kind": "split", "note": "2-for-1"}  # fmt: skip
    response = admin_client.post(url, _asset_form(asset, **change))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    stored = MultiplierChange.objects.get(asset=asset)
    assert stored.shares_per_token == Decimal(2) and stored.created_by == admin_user
    assert (stored.kind, stored.note) == ("split", "2-for-1")

    zero_change = change | {"effective_at_0": "2026-07-01", "shares_per_token": "0"}
    zero = admin_client.post(url, _asset_form(asset, **zero_change))
    assert zero.status_code == 200
    assert "Ensure this value is greater than or equal to" in zero.content.decode()
    assert MultiplierChange.objects.filter(asset=asset).count() == 1


def test_custodian_user_gets_no_access(client, owner, asset, evidence):
    run(asset)
    owner.is_staff = True  # even if flagged staff by mistake
    owner.save()
    client.force_login(owner)
    rec = Reconciliation.objects.get()
    for url in ["/admin/audits/reconciliation/", ELIGIBILITY_URL,
                "/admin/audits/eligibilityevent/",
                f"/admin/audits/reconciliation/{rec.pk}/change/"]:  # fmt: skip
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    row = Eligibility.objects.get(asset=asset)
    response = client.post(ELIGIBILITY_URL, {"action": "freeze_selected",
                                             "_selected_action": [row.pk], "apply": "1",
                                             "reason": "x"})  # fmt: skip
    assert response.status_code == 302
    assert not EligibilityEvent.objects.exists()


def test_refusal_for_one_asset_does_not_stop_the_others(admin_client, asset, evidence):
    run(asset, 3)
    page = admin_client.get(ELIGIBILITY_URL).content.decode()
    assert "3 / 3: ready for approval" in page
    other = Eligibility.objects.get(asset__code="AAPLx")  # listed, never reconciled
    response = admin_client.post(
        ELIGIBILITY_URL,
        {"action": "approve_unfreeze", "apply": "1", "reason": "batch approval",
         "_selected_action": [other.pk, Eligibility.objects.get(asset=asset).pk]},
        follow=True,
    )  # fmt: skip
    messages = texts(response)
    assert any(m.startswith("AAPLx: The latest reconciliation is missing") for m in messages)
    assert "Approve unfreeze: 1 asset(s)." in messages
    assert Eligibility.objects.get(asset=asset).state == "eligible"
    assert Eligibility.objects.get(asset__code="AAPLx").state == "frozen"
