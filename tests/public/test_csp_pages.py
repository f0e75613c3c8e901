"""Every page we serve works under the strict policy in a real browser: the Django admin as a
superuser (index, every changelist of our app, change, add, delete and custom pages, action
confirmations reached by clicking) and the portal as a custodian user. The browser reports a
refused inline script or style as a console error, which ``assert_clean`` fails on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from audits import statements
from audits.models import Asset, CustodianStatement
from tests.webpage import assert_clean


def logged_in(open_page, live_server, user):
    client = Client()
    client.force_login(user)
    page = open_page("about:blank")
    page.context.add_cookies([{
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }])  # fmt: skip
    return page


@pytest.fixture
def statement(owner) -> CustodianStatement:
    return statements.submit_statement(
        custodian=owner.custodian_link.custodian, user=owner, fmt="csv",
        raw=b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n",
        as_of=datetime(2026, 11, 20, 21, tzinfo=UTC),
    ).statement  # fmt: skip


def visit(page, url: str, visited: list[str]) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("load")
    assert page.problems.errors == [], (url, page.problems.errors)
    visited.append(url)


def run_action(page, changelist: str, action: str, visited: list[str]) -> None:
    """Tick the first row, choose ``action`` and press Go, as an admin would."""
    visit(page, changelist, visited)
    page.locator("input.action-select").first.check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state("load")
    visited.append(f"{changelist} → {action}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_pages_run_under_the_policy(live_server, open_page, admin_user, statement):
    page = logged_in(open_page, live_server, admin_user)
    base, visited = live_server.url, []
    ours = [m for m in apps.get_app_config("audits").get_models() if m in admin.site._registry]
    assert len(ours) >= 10
    for model in ours:
        visit(page, base + reverse(f"admin:audits_{model._meta.model_name}_changelist"), visited)
    change = reverse("admin:audits_custodianstatement_change", args=[statement.pk])
    asset = Asset.objects.order_by("pk").first()
    for url in (
        "/admin/",
        change,
        reverse("admin:audits_custodianstatement_history", args=[statement.pk]),
        reverse("admin:audits_asset_change", args=[asset.pk]),
        reverse("admin:audits_asset_add"),
        reverse("admin:audits_custodian_delete", args=[statement.custodian_id]),
        reverse("admin:audits_custodianstatement_upload"),
        reverse("admin:password_change"),
    ):
        visit(page, base + url, visited)

    statements_list = base + reverse("admin:audits_custodianstatement_changelist")
    run_action(page, statements_list, "reject_selected", visited)
    assert page.locator("#after-rejection").count() == 1
    eligibility_list = base + reverse("admin:audits_eligibility_changelist")
    run_action(page, eligibility_list, "freeze_selected", visited)
    assert page.locator("#selected-assets").count() == 1
    # The form's own script (the related-object widgets, the date pickers, the sidebar
    # filter) ran on the way: any refused script or style would be in the errors.
    assert_clean(page)
    assert len(visited) >= len(ours) + 10


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_portal_pages_run_under_the_policy(live_server, open_page, owner, statement):
    page = logged_in(open_page, live_server, owner)
    base, visited = live_server.url, []
    for url in ("/portal/", f"/portal/statements/{statement.pk}/", "/portal/tokens/"):
        visit(page, base + url, visited)
    page.fill("input[name=name]", "ci")
    page.click("main form button.primary")
    page.wait_for_load_state("load")
    assert page.locator("#new-token").count() == 1
    assert page.locator(".skip-link").count() == 1
    assert_clean(page)
