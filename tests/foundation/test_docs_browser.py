"""The API docs render in a real browser with no network access beyond this server."""

import pytest

from tests.browser import dump_dom


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_offline(live_server):
    dom = dump_dom(f"{live_server.url}/api/docs/")
    assert 'class="swagger-ui' in dom
    # Operations only appear once the UI has fetched and rendered the schema.
    assert "/api/v1/assets/" in dom
    assert "porapp API" in dom


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_redoc_renders_offline(live_server):
    dom = dump_dom(f"{live_server.url}/api/redoc/")
    assert "porapp API" in dom
    assert "/api/v1/custodians/" in dom
