"""Supply over the API and in the admin: public evidence, failures shown as errors, never zero."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml
from openapi_spec_validator import validate

from audits import supply
from audits.core import devchain
from audits.models import Chain, ExcludedAddress, SupplyReading

from .conftest import CHAIN_A, E18, HOLDER, TREASURY, settle

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


@pytest.fixture
def readings(asset, chain_row_a, chain_row_b, chain_a, chain_b, deploy, dead_url):
    """An ok reading on chain A (with a treasury excluded) and a failed one on chain B."""
    ok_dep = deploy(asset, chain_row_a)
    devchain.mint(chain_a.url, ok_dep.address, HOLDER, 12 * E18)
    devchain.mint(chain_a.url, ok_dep.address, TREASURY, 3 * E18)
    settle(chain_a.url)
    ExcludedAddress.objects.create(deployment=ok_dep, address=TREASURY, label="treasury")
    failed_dep = deploy(asset, chain_row_b, decimals=6)
    Chain.objects.filter(pk=chain_row_b.pk).update(rpc_urls=dead_url)
    ok = supply.read_deployment(ok_dep.pk)
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(failed_dep.pk)
    return ok, SupplyReading.objects.get(deployment=failed_dep)


def test_readings_list_is_public_paginated_and_shows_failures_without_amounts(api, readings):
    ok, failed = readings
    body = api.get("/api/v1/supply-readings/?page_size=1").json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]

    rows = {r["id"]: r for r in api.get("/api/v1/supply-readings/").json()["results"]}
    good = rows[ok.pk]
    assert good["status"] == "ok" and good["source_label"] == "on-chain"
    assert good["block_number"] == ok.block_number and good["block_hash"] == ok.block_hash
    assert good["total_supply_raw"] == str(15 * E18)
    assert good["total_supply"] == "15.000000000000000000"
    assert good["circulating"] == "12.000000000000000000"
    assert good["excluded_balances"] == {TREASURY: str(3 * E18)}
    bad = rows[failed.pk]
    assert bad["status"] == "failed" and "Connection refused" in bad["error"]
    for field in ("total_supply_raw", "total_supply", "circulating", "circulating_raw"):
        assert bad[field] is None
    assert bad["block_number"] is None


def test_readings_filters(api, readings):
    ok, failed = readings
    by_status = api.get("/api/v1/supply-readings/?status=failed").json()["results"]
    assert [r["id"] for r in by_status] == [failed.pk]
    by_chain = api.get(f"/api/v1/supply-readings/?chain_id={CHAIN_A}&asset=AAPLx").json()
    assert [r["id"] for r in by_chain["results"]] == [ok.pk]
    assert api.get("/api/v1/supply-readings/?asset=NOPE").json()["count"] == 0
    assert api.get("/api/v1/supply-readings/?source=manual").json()["count"] == 0

    bad = api.get("/api/v1/supply-readings/?status=zero")
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "status"


def test_readings_are_read_only(api, admin_api, readings):
    ok, _ = readings
    assert api.post("/api/v1/supply-readings/", {}).status_code in (401, 403)
    assert admin_api.delete(f"/api/v1/supply-readings/{ok.pk}/").status_code == 405


def test_asset_supply_endpoint_gives_no_total_while_a_chain_fails(api, readings):
    body = api.get("/api/v1/assets/AAPLx/supply/").json()
    assert body["circulating"] is None and body["complete"] is False
    assert "failed" in body["reason"]
    states = {d["chain_id"]: d for d in body["deployments"]}
    assert states[CHAIN_A]["state"] == "ok"
    assert states[CHAIN_A]["reading"]["circulating"] == "12.000000000000000000"
    failed = [d for d in body["deployments"] if d["state"] == "failed"]
    assert failed[0]["reading"] is None
    assert "Connection refused" in failed[0]["latest_error"]["error"]
    assert api.get("/api/v1/assets/NOPE/supply/").status_code == 404


def test_asset_supply_endpoint_total_and_manual_label(api, admin_user, readings):
    _, failed = readings
    supply.record_manual_supply(
        failed.deployment, Decimal("7.25"), reference="issuer report", entered_by=admin_user
    )
    body = api.get("/api/v1/assets/AAPLx/supply/").json()
    assert body["circulating"] == "19.250000000000000000" and body["complete"] is True
    assert body["includes_manual"] is True
    manual = [d["reading"] for d in body["deployments"] if d["reading"]["source"] == "manual"]
    assert manual[0]["source_label"] == "issuer-reported (manual)"
    assert manual[0]["reference"] == "issuer report"


def test_schema_stays_valid_with_supply_endpoints(api):
    spec = yaml.safe_load(api.get("/api/schema/").content)
    validate(spec)
    assert "/api/v1/supply-readings/" in spec["paths"]
    assert "/api/v1/assets/{code}/supply/" in spec["paths"]


# --------------------------------------------------------------------------- admin


def test_admin_lists_readings_with_errors_and_by_asset_view(client, admin_user, readings):
    client.force_login(admin_user)
    page = client.get("/admin/audits/supplyreading/?status__exact=failed").content.decode()
    assert "Connection refused" in page and "12.000000000000000000" not in page
    page = client.get("/admin/audits/supplyreading/").content.decode()
    assert "12.000000000000000000" in page and "on-chain" in page
    _, failed = readings
    detail = client.get(f"/admin/audits/supplyreading/{failed.pk}/change/")
    assert detail.status_code == 200 and "Connection refused" in detail.content.decode()

    by_asset = client.get("/admin/audits/supplyreading/by-asset/").content.decode()
    assert "AAPLx" in by_asset and "no total" in by_asset and "Connection refused" in by_asset
    assets = client.get("/admin/audits/asset/").content.decode()
    assert 'href="/admin/audits/supplyreading/by-asset/">no total</a>' in assets


def test_admin_manual_entry_form(client, admin_user, readings):
    _, failed = readings
    client.force_login(admin_user)
    url = "/admin/audits/supplyreading/add/"
    base = {"deployment": failed.deployment_id, "as_of_0": "2026-11-20", "as_of_1": "21:00:00"}
    refused = client.post(url, {**base, "supply": "1.0000001", "reference": "x"})
    assert refused.status_code == 200 and "finer than one base unit" in refused.content.decode()

    done = client.post(url, {**base, "supply": "42.5", "reference": "issuer PDF"})
    assert done.status_code == 302
    manual = SupplyReading.objects.get(source="manual")
    assert manual.circulating == Decimal("42.5") and manual.entered_by == admin_user
    assert manual.reference == "issuer PDF"


def test_admin_chain_page_shows_rpc_urls_redacted(client, admin_user, chain_row_a):
    Chain.objects.filter(pk=chain_row_a.pk).update(
        rpc_urls="https://eth.example/v2/${ETH_KEY}\nhttps://user:pw@backup.example:8443/?k=abc"
    )
    client.force_login(admin_user)
    listing = client.get("/admin/audits/chain/").content.decode()
    assert "https://eth.example/…, https://backup.example:8443/…" in listing
    assert "abc" not in listing and "pw@" not in listing


def test_admin_read_supply_now_queues_after_commit(
    client, admin_user, readings, django_capture_on_commit_callbacks
):
    ok, _ = readings
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/audits/tokendeployment/",
            {"action": "read_supply_now", "_selected_action": [ok.deployment_id]},
            follow=True,
        )
    assert "Queued 1 supply read(s)." in response.content.decode()
    assert len(callbacks) == 1


def test_admin_excluded_address_inline_validates_checksum(client, admin_user, readings):
    ok, _ = readings
    client.force_login(admin_user)
    page = client.get(f"/admin/audits/tokendeployment/{ok.deployment_id}/change/")
    assert "excluded_addresses-TOTAL_FORMS" in page.content.decode()


# --------------------------------------------------------------------------- confirmations


def _chain_form(**fields):
    return {"chain_id": 10, "name": "Optimism", "active": "on", "rpc_urls": "",
            "confirmations": 1, "rpc_timeout": 10, **fields}  # fmt: skip


def test_admin_refuses_confirmations_below_the_chain_minimum(client, admin_user, settings):
    client.force_login(admin_user)
    refused = client.post("/admin/audits/chain/add/", _chain_form(confirmations=1))
    assert refused.status_code == 200
    assert "At least 2 for chain 10" in refused.content.decode()
    assert not Chain.objects.filter(chain_id=10).exists()

    settings.SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN = {10: 20}
    refused = client.post("/admin/audits/chain/add/", _chain_form(confirmations=12))
    assert "At least 20 for chain 10" in refused.content.decode()
    done = client.post("/admin/audits/chain/add/", _chain_form(confirmations=20))
    assert done.status_code == 302 and Chain.objects.get(chain_id=10).confirmations == 20


def test_readings_show_when_last_confirmed_and_how_deep(api, client, admin_user, readings):
    ok, failed = readings
    ok.refresh_from_db()
    rows = {r["id"]: r for r in api.get("/api/v1/supply-readings/").json()["results"]}
    assert rows[ok.pk]["last_confirmed_at"] is not None
    assert rows[ok.pk]["confirmations"] == 2 and rows[ok.pk]["orphaned_at"] is None
    assert rows[failed.pk]["last_confirmed_at"] is None  # a failure confirms nothing

    Chain.objects.filter(pk=ok.deployment.chain_id).update(confirmations=0)
    SupplyReading.objects.filter(pk=ok.pk).update(confirmations=0)
    client.force_login(admin_user)
    listing = client.get("/admin/audits/supplyreading/").content.decode()
    assert "Last confirmed" in listing and "0 (below the minimum 2)" in listing
    by_asset = client.get("/admin/audits/supplyreading/by-asset/").content.decode()
    assert "<th>last confirmed</th>" in by_asset and "0 (below the minimum 2)" in by_asset
    orphans = client.get("/admin/audits/supplyreading/?orphaned_at__isnull=False")
    assert orphans.status_code == 200
