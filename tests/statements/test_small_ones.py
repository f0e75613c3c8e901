"""Issue #9 point 9: the documented upload works, readable 415s, 404 not 500, as-of offsets."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from audits import tokens
from audits.models import CustodianStatement
from tests.statements.conftest import upload

DOCS = Path(__file__).resolve().parents[2] / "docs" / "statement-formats.md"
CSV = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"


def documented_upload_command() -> str:
    text = DOCS.read_text()
    section = text[text.index("## Uploading") :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.mark.django_db(transaction=True)
def test_the_documented_upload_command_works(live_server, owner, tmp_path):
    """The curl command in docs/statement-formats.md, run as written by a real curl."""
    _, secret = tokens.create_token(owner, "docs")
    (tmp_path / "statement.csv").write_bytes(CSV)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", documented_upload_command()],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PORAPP_URL": live_server.url, "PORAPP_TOKEN": secret},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body = json.loads(result.stdout)
    assert body["status"] == "accepted", body
    assert CustodianStatement.objects.get().raw.content == CSV


def test_no_documented_command_sends_a_raw_body():
    text = DOCS.read_text()
    commands = re.findall(r"^curl .*?(?<!\\)$", text, re.M | re.S)
    assert commands and not any("--data-binary" in c for c in commands)
    assert text.count("-F file=@statement.csv") == 2  # the upload and the signed upload


@pytest.mark.django_db
def test_a_raw_body_gets_a_readable_415(owner_api):
    response = owner_api.post("/api/v1/statements/", CSV, content_type="text/csv")
    assert response.status_code == 415
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Unsupported Media Type"
    assert "{" not in problem["title"]
    assert '"text/csv"' in problem["detail"]
    assert "multipart/form-data" in problem["detail"]
    assert not CustodianStatement.objects.exists()


@pytest.mark.django_db
def test_admin_raw_download_of_an_unknown_id_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/audits/custodianstatement/999999/raw/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("as_of", ["2026-11-20T21:00:00", "2026-11-20 21:00"])
def test_an_as_of_without_offset_is_refused_over_the_api(owner_api, as_of):
    response = upload(owner_api, CSV, as_of=as_of)
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["field"] == "as_of"
    assert "has no UTC offset" in error["message"]
    assert not CustodianStatement.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("as_of", ["2026-11-20T21:00:00Z", "2026-11-20T22:00:00+01:00"])
def test_an_as_of_with_offset_is_taken_as_given(owner_api, as_of):
    response = upload(owner_api, CSV, as_of=as_of)
    assert response.status_code == 201, response.content
    assert response.json()["as_of"] == "2026-11-20T21:00:00Z"
