"""Invalid ISIN, LEI and contract addresses are refused at the model, in the admin and the API."""

import pytest
from django.core.exceptions import ValidationError

from audits.models import Asset, Chain, Custodian, TokenDeployment

pytestmark = pytest.mark.django_db

GOOD_ISIN = "US0378331005"
GOOD_LEI = "5493001KJTIIGC8Y1R12"
GOOD_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize(
    ("isin", "message"),
    [
        ("US0378331006", "check digit is wrong"),
        ("US037833100", "wrong length"),
        ("us0378331005", "without spaces or lowercase"),
        ("XX0378331005", "unknown country code"),
    ],
)
def test_asset_refuses_bad_isin(isin, message):
    asset = Asset(code="AAPLx", name="Apple", isin=isin)
    with pytest.raises(ValidationError) as info:
        asset.full_clean()
    assert message in " ".join(info.value.message_dict["isin"])


def test_asset_accepts_good_isin():
    Asset(code="AAPLx", name="Apple", isin=GOOD_ISIN).full_clean()


@pytest.mark.parametrize(
    ("lei", "message"),
    [("5493001KJTIIGC8Y1R13", "check digit"), ("5493001KJTIIGC8Y1R1", "wrong length")],
)
def test_custodian_refuses_bad_lei(lei, message):
    with pytest.raises(ValidationError) as info:
        Custodian(name="X", lei=lei).full_clean()
    assert message in " ".join(info.value.message_dict["lei"])


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (GOOD_ADDRESS.lower(), "EIP-55 checksum; the checksummed form is " + GOOD_ADDRESS),
        ("0x5FbDB2315678afecb367f032d93F642f64180aA3", "EIP-55 checksum"),
        ("0x1234", "expected 0x followed by 40 hex digits"),
        ("5FbDB2315678afecb367f032d93F642f64180aa3", "expected 0x"),
    ],
)
def test_deployment_refuses_bad_address(address, message):
    asset = Asset.objects.create(code="AAPLx", name="Apple", isin=GOOD_ISIN)
    chain = Chain.objects.create(chain_id=1, name="Ethereum")
    deployment = TokenDeployment(asset=asset, chain=chain, address=address, decimals=18)
    with pytest.raises(ValidationError) as info:
        deployment.full_clean()
    assert message in " ".join(info.value.message_dict["address"])


def test_admin_refuses_bad_isin(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/audits/asset/add/",
        {
            "code": "AAPLx",
            "name": "Apple",
            "isin": "US0378331006",
            "kind": "stock",
            "decimals": 18,
            "shares_per_token": "1",
            "active": "on",
            "deployments-TOTAL_FORMS": "0",
            "deployments-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form comes back with errors
    assert "the check digit is wrong" in response.content.decode()
    assert not Asset.objects.exists()


def test_admin_refuses_bad_lei(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/audits/custodian/add/",
        {
            "name": "X",
            "lei": "5493001KJTIIGC8Y1R13",
            "users-TOTAL_FORMS": "0",
            "users-INITIAL_FORMS": "0",
        },
    )
    assert "not a valid LEI: the check digit is wrong" in response.content.decode()
    assert not Custodian.objects.exists()


def test_admin_refuses_unchecksummed_address(client, admin_user):
    client.force_login(admin_user)
    asset = Asset.objects.create(code="AAPLx", name="Apple", isin=GOOD_ISIN)
    chain = Chain.objects.create(chain_id=1, name="Ethereum")
    response = client.post(
        "/admin/audits/tokendeployment/add/",
        {"asset": asset.pk, "chain": chain.pk, "address": GOOD_ADDRESS.lower(), "decimals": 18},
    )
    assert "fails its EIP-55 checksum" in response.content.decode()
    assert not TokenDeployment.objects.exists()


def test_api_refuses_bad_isin_as_problem_json(admin_api):
    response = admin_api.post(
        "/api/v1/assets/",
        {"code": "AAPLx", "name": "Apple", "isin": "US0378331006", "kind": "stock"},
        format="json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert body["errors"] == [
        {
            "field": "isin",
            "message": "'US0378331006' is not a valid ISIN: the check digit is wrong.",
        }
    ]
    assert body["detail"].startswith("isin: ")
    assert not Asset.objects.exists()


def test_api_refuses_bad_lei(admin_api):
    response = admin_api.post(
        "/api/v1/custodians/", {"name": "X", "lei": "5493001KJTIIGC8Y1R13"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "lei"
    assert "check digit" in response.json()["errors"][0]["message"]


def test_api_refuses_bad_address(admin_api):
    Asset.objects.create(code="AAPLx", name="Apple", isin=GOOD_ISIN)
    Chain.objects.create(chain_id=1, name="Ethereum")
    response = admin_api.post(
        "/api/v1/deployments/",
        {"asset": "AAPLx", "chain": 1, "address": GOOD_ADDRESS.lower(), "decimals": 18},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "address"
    assert GOOD_ADDRESS in error["message"]


def test_api_accepts_valid_deployment(admin_api):
    Asset.objects.create(code="AAPLx", name="Apple", isin=GOOD_ISIN)
    Chain.objects.create(chain_id=1, name="Ethereum")
    response = admin_api.post(
        "/api/v1/deployments/",
        {"asset": "AAPLx", "chain": 1, "address": GOOD_ADDRESS, "decimals": 18},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert TokenDeployment.objects.get().address == GOOD_ADDRESS
