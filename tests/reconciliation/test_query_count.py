"""A reconciliation run reads and writes in bulk: its query count does not grow with assets."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits.models import Reconciliation
from audits.reconciliation import reconcile_assets

from .seed import seed_assets


def _count(ids: list[int]) -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        results = reconcile_assets(ids)
    return len(queries.captured_queries), results


@pytest.mark.django_db
def test_query_count_does_not_depend_on_the_number_of_assets():
    few = [a.pk for a in seed_assets(3, prefix="F")]
    many = [a.pk for a in seed_assets(12, prefix="M")]

    few_first, few_results = _count(few)
    many_first, many_results = _count(many)
    assert [r.created for r in few_results] == [True] * 3
    assert [r.created for r in many_results] == [True] * 12
    assert {r.status for r in few_results + many_results} == {"healthy"}
    assert few_first == many_first

    few_again, few_results = _count(few)
    many_again, many_results = _count(many)
    assert not any(r.created for r in few_results + many_results)
    assert few_again == many_again
    assert Reconciliation.objects.count() == 15
    assert set(Reconciliation.objects.values_list("checks", flat=True)) == {2}
    # Each reconciliation references both statements and both readings of its asset.
    rec = Reconciliation.objects.get(asset_id=many[-1])
    assert rec.statement_links.count() == 2 and rec.reading_links.count() == 2


def test_fast_writes_name_every_column():
    """The PostgreSQL COPY path writes only the fields it lists: a column added to these
    models later must be added there too, or it would silently stay empty."""
    from audits import reconciliation
    from audits.models import ReconciledReading, ReconciledStatement, Reconciliation

    for model, fields in (
        (Reconciliation, reconciliation._RECONCILIATION_FIELDS),
        (ReconciledStatement, reconciliation._STATEMENT_LINK_FIELDS),
        (ReconciledReading, reconciliation._READING_LINK_FIELDS),
    ):
        columns = {f.name for f in model._meta.concrete_fields if not f.primary_key}
        assert columns == set(fields), model


@pytest.mark.django_db
def test_any_of_matches_in_for_ids_and_matches_nothing_when_empty():
    from audits.models import Asset

    ids = [Asset.objects.create(code=f"A{n}x", name="x", isin=isin).pk
           for n, isin in enumerate(["US0378331005", "US5949181045", "US67066G1040"])]  # fmt: skip
    assert set(Asset.objects.filter(pk__any_of=ids[:2]).values_list("pk", flat=True)) == set(
        ids[:2]
    )
    assert not Asset.objects.filter(pk__any_of=[]).exists()
    assert Asset.objects.filter(deployments__isnull=True, pk__any_of=ids).count() == 3
