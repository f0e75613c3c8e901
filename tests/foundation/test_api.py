"""API conventions: problem+json errors, pagination, the OpenAPI schema and offline docs."""

import re

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_assets_list_is_paginated_and_public(api, demo):
    response = api.get("/api/v1/assets/?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [a["code"] for a in body["results"]] == ["AAPLx", "MSFTx"]
    assert body["next"].endswith("page=2&page_size=2")
    assert body["results"][0]["isin"] == "US0378331005"
    assert body["results"][0]["shares_per_token"] == "1.000000000000000000"


def test_asset_detail_by_code(api, demo):
    response = api.get("/api/v1/assets/SPYx/")
    assert response.status_code == 200
    assert response.json()["kind"] == "etf"


def test_custodian_contact_only_for_admins(api, admin_api, demo):
    public = api.get("/api/v1/custodians/").json()["results"]
    assert public and all("contact" not in c for c in public)
    private = admin_api.get("/api/v1/custodians/").json()["results"]
    assert {c["contact"] for c in private} == {"ops@northwind.example", "custody@harbor.example"}


def test_not_found_is_problem_json(api, demo):
    response = api.get("/api/v1/assets/NOPE/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/not-found")
    assert body["status"] == 404
    assert body["instance"] == "/api/v1/assets/NOPE/"


def test_schema_is_valid_openapi3(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    spec = yaml.safe_load(response.content)
    assert spec["openapi"].startswith("3.")
    validate(spec)
    assert "/api/v1/assets/" in spec["paths"]
    assert "/api/v1/custodians/{id}/" in spec["paths"]


@pytest.mark.parametrize("page", ["/api/docs/"])
def test_docs_pages_reference_only_local_assets(client, page):
    html = client.get(page).content.decode()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
    assert urls, "the page should load its scripts"
    external = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert external == []
    for url in urls:
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url


def test_swagger_ui_script_is_a_separate_local_response(client):
    html = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in html
    assert "<script>" not in html and "<style" not in html
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()
    assert not re.search(r"https?://", script.content.decode())
