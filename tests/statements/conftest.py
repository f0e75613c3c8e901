import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rest_framework.test import APIClient

from audits import tokens
from audits.core.custodian_signatures import key_id
from audits.models import Asset, CustodianKey

SAMPLES = Path(__file__).resolve().parents[1] / "statement_formats" / "samples"
AS_OF = "2026-11-20T21:00:00Z"


@pytest.fixture
def extra_assets(demo):
    """Assets for every ISIN in the sample files, beyond the demo set."""
    Asset.objects.create(code="NVDAx", name="NVIDIA", isin="US67066G1040")
    Asset.objects.create(code="CSPXx", name="iShares Core S&P 500", isin="IE00B5BMR087", kind="etf")


def token_client(user) -> APIClient:
    _, secret = tokens.create_token(user, "test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def owner_api(owner) -> APIClient:
    return token_client(owner)


@pytest.fixture
def outsider_api(outsider) -> APIClient:
    return token_client(outsider)


@pytest.fixture
def signing_key(custodian_a):
    """An Ed25519 key registered for custodian A; yields a function that signs bytes."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    CustodianKey.objects.create(custodian=custodian_a, key_id=key_id(public), public_key=public)

    def sign(raw: bytes) -> str:
        return f"{key_id(public)}:{base64.b64encode(private.sign(raw)).decode()}"

    return sign


def upload(client, raw: bytes, fmt: str = "csv", as_of: str | None = AS_OF, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"file": SimpleUploadedFile(f"s.{fmt}", raw), "format": fmt}
    if as_of:
        data["as_of"] = as_of
    data.update({k: v for k, v in extra.items() if not k.startswith("HTTP_")})
    headers = {k: v for k, v in extra.items() if k.startswith("HTTP_")}
    return client.post("/api/v1/statements/", data, format="multipart", **headers)
