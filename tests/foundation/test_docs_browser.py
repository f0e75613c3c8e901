"""The API docs render in a real browser, under the site's strict Content-Security-Policy, with
no network access beyond this server."""

import pytest

from tests.webpage import assert_clean


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_offline_under_the_policy(live_server, open_page):
    page = open_page(f"{live_server.url}/api/docs/")
    # Operations only appear once the UI has fetched and rendered the schema.
    page.wait_for_selector("text=/api/v1/assets/", timeout=10_000)
    assert page.locator(".swagger-ui").count() > 0
    assert "porapp API" in page.content()
    policy = page.evaluate(
        "async () => (await fetch(location.href)).headers.get('content-security-policy')"
    )
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # assert_clean fails on any console error, CSP violations included.
    assert_clean(page)
