"""The home page's cards from real reconciliations: the evidence behind the latest one, the
ratio history for the chart, the latest attestation, in a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from audits import attestations, collateral, reconciliation
from audits.models import Reconciliation
from tests.attestations.conftest import key_file  # noqa: F401 (fixture)
from tests.collateral.conftest import APPLE, MICROSOFT, NVIDIA
from tests.reconciliation.conftest import MONDAY_CLOSE, NOW, World


@pytest.fixture
def world(db, admin_user) -> World:
    return World(admin_user)


def run(world, at):
    (result,) = reconciliation.reconcile_assets([world.asset.pk], now=at)
    return result


@pytest.fixture
def history(world):
    """Backed at NOW, 1 token short an hour later, backed again two hours later."""
    world.backed()
    run(world, NOW)
    world.supply(0, "501", as_of=NOW + timedelta(hours=1))
    run(world, NOW + timedelta(hours=1))
    world.supply(0, "500", as_of=NOW + timedelta(hours=2))
    run(world, NOW + timedelta(hours=2))
    assert Reconciliation.objects.count() == 3
    return world


def test_card_names_the_evidence_of_the_latest_reconciliation(history):
    (card,) = collateral.home_cards(NOW + timedelta(hours=3))
    assert card.asset.code == "TSTx"
    assert [(c.custodian, c.as_of, c.tokens) for c in card.custodians] == [
        ("Alpha Custody", MONDAY_CLOSE, Decimal(500)),
        ("Beta Trust", MONDAY_CLOSE, Decimal(500)),
    ]
    assert [(r.chain, r.chain_id, r.tokens, r.manual, r.problem) for r in card.chains] == [
        ("Alpha chain", 900001, Decimal(500), True, ""),
        ("Beta chain", 900002, Decimal(500), True, ""),
    ]
    assert card.attestation is None


def test_chart_steps_through_the_window(history):
    (card,) = collateral.home_cards(NOW + timedelta(hours=3))
    chart = card.chart
    # backed, then 1000/1001, then backed: one unbroken step line down and back up
    assert chart.path.count("M") == 1 and chart.path.count("V") == 2
    levels = [Decimal(v) for v in re.findall(r"V([\d.]+)", chart.path)]
    assert levels[0] > Decimal(chart.reference_y) == levels[1]
    assert chart.summary == "Lowest 99.90 % on 24 Nov; now 100.00 %."
    assert chart.breach_y is not None  # the default policy: breach at 10 bps


def test_chart_starts_at_the_window_edge_with_the_ratio_then_in_force(history):
    (card,) = collateral.home_cards(NOW + timedelta(days=40))
    # No reconciliation in the last 30 days: the newest before the window holds all along.
    assert card.chart.path == f"M48.00 {card.chart.reference_y}H312.00"
    assert card.chart.summary.endswith("now 100.00 %.")


def test_history_is_capped_per_asset_and_keeps_the_one_before(history):
    start = NOW + timedelta(minutes=30)
    points = collateral.ratio_history([history.asset.pk], start, limit=1)[history.asset.pk]
    assert [p.at for p in points] == [NOW, NOW + timedelta(hours=2)]
    assert [p.ratio for p in points] == [Decimal(1), Decimal(1)]


def test_card_links_the_latest_attestation(history, key_file):  # noqa: F811
    attestations.issue("changed", NOW + timedelta(hours=2))
    attestations.issue("heartbeat", NOW + timedelta(hours=3))
    (card,) = collateral.home_cards(NOW + timedelta(hours=3))
    assert card.attestation.sequence == 2
    html = Client().get("/").content.decode()
    assert 'href="/attestations/2/#asset-TSTx">Latest signed attestation #2</a>' in html
    assert "issued 24 Nov 2026 18:00 UTC" in html


def test_page_without_attestation_says_so(history):
    html = Client().get("/").content.decode()
    assert "No attestation yet." in html
    assert "Alpha Custody: statement as of 23 Nov 2026 21:00 UTC, 500 TSTx" in html
    assert "Alpha chain (chain id 900001):" in html and "issuer-reported figure" in html
    assert '<svg role="img" aria-labelledby="chart-TSTx-title chart-TSTx-summary"' in html
    assert 'style="' not in html


def _assets(book, isins):
    assets = [book.asset(f"A{isin[2:6]}x", isin) for isin in isins]
    book.holds({isin: "10" for isin in isins})
    for asset in assets:
        book.supply(asset, "10")
    book.reconcile(*assets, times=1)
    return assets


def test_queries_do_not_grow_with_assets(book, django_assert_max_num_queries, key_file):  # noqa: F811
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _assets(book, [APPLE])
    attestations.issue("changed")
    with CaptureQueriesContext(connection) as one:
        (card,) = collateral.home_cards()
    assert card.custodians and card.chains and card.chart.path
    _assets(book, [MICROSOFT, NVIDIA, "US4592001014"])
    with django_assert_max_num_queries(len(one.captured_queries)):
        cards = collateral.home_cards()
    assert len(cards) == 4 and all(c.custodians and c.chains and c.chart.path for c in cards)
    with django_assert_max_num_queries(len(one.captured_queries) + 3):  # session etc.
        assert Client().get("/").status_code == 200
    assert len(one.captured_queries) <= 6, [q["sql"][:80] for q in one.captured_queries]


def test_a_chain_without_a_usable_reading_says_why(world):
    world.backed()
    # A third deployment on a chain nobody has reported for: no figure, and the reason.
    from audits.models import Chain, TokenDeployment

    TokenDeployment.objects.create(
        asset=world.asset,
        chain=Chain.objects.create(chain_id=900003, name="Gamma chain", rpc_urls=""),
        address="0x" + "33" * 20,
        decimals=18,
    )
    run(world, NOW)
    (card,) = collateral.home_cards(NOW + timedelta(minutes=1))
    gamma = next(r for r in card.chains if r.chain_id == 900003)
    assert gamma.tokens is None and gamma.problem
    assert (
        card.chart.path == ""
        and card.chart.summary == "No known ratio in this period; now unknown."
    )
    html = re.sub(r"\s+", " ", Client().get("/").content.decode())
    assert f"Gamma chain (chain id 900003): no usable reading: {gamma.problem}" in html
