"""CI names the database and broker it means to test; this proves the suite really used them."""

import os

import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.skipif("PORAPP_EXPECT_DB" not in os.environ, reason="only meaningful under CI")
def test_running_on_the_expected_database():
    assert connection.vendor == os.environ["PORAPP_EXPECT_DB"]


@pytest.mark.skipif("PORAPP_EXPECT_BROKER" not in os.environ, reason="only meaningful under CI")
def test_running_on_the_expected_broker():
    assert settings.CELERY_BROKER_URL.split(":", 1)[0] == os.environ["PORAPP_EXPECT_BROKER"]
