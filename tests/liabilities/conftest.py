"""Fixtures for liability snapshots: an operator, its API client, storage in a temp dir."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from audits import tokens
from audits.models import PlatformOperator

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)

GOOD = (
    b"account_id,asset,balance\n"
    b"u-1001,AAPLx,12.5\n"
    b"u-1001,MSFTx,3\n"
    b"u-1002,AAPLx,0.000000000000000001\n"
    b"u-1003,AAPLx,250\n"
)


@pytest.fixture(autouse=True)
def _liabilities_in_tmp(liability_storage, settings):
    """Every test here keeps its liability files (and the spool under VAR_DIR) to itself."""
    settings.VAR_DIR = liability_storage / "var"
    return liability_storage


@pytest.fixture
def operator(django_user_model, demo):
    user = django_user_model.objects.create_user("operator", "ops@platform.example", "pw")
    PlatformOperator.objects.create(user=user)
    return user


def token_client(user) -> APIClient:
    _, secret = tokens.create_token(user, "test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def operator_api(operator) -> APIClient:
    return token_client(operator)


def chunks(raw: bytes, size: int = 7):
    return (raw[i : i + size] for i in range(0, len(raw), size))
