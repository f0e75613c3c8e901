"""Writing many rows in one statement, fast on PostgreSQL, portable elsewhere.

Django's `bulk_create` and `bulk_update` spend most of a 1,000-asset reconciliation in Python
compiling SQL (one CASE branch per row and column for an update). On PostgreSQL these write
the same rows with COPY and with one `UPDATE … FROM (VALUES …)`; every value still goes
through its field's `get_db_prep_save`, so exactness checks (ExactDecimalField refuses a value
it cannot hold) are the same as through the ORM. Other databases use the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def insert_rows(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    with_ids: bool = False,
) -> None:
    """Insert ``objs`` (unsaved), writing only ``fields``; with ``with_ids`` each object gets
    its primary key (on PostgreSQL taken from the table's sequence beforehand)."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    columns: list[Any] = [model._meta.get_field(name) for name in fields]
    if with_ids:
        pk: Any = model._meta.pk
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, pk.column, len(objs)],
            )
            for obj, (pk_value,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk_value
        columns.insert(0, pk)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row([_prepared(f, obj) for f in columns])


def update_rows(
    model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]
) -> None:
    """Write ``fields`` of ``objs`` (each with its primary key) in one statement."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(fields))
        return
    qn = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    columns: list[Any] = [model._meta.get_field(name) for name in fields]
    row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    aliases = ", ".join(qn(c) for c in [pk.column, *(f.column for f in columns)])
    assignments = ", ".join(
        f"{qn(f.column)} = v.{qn(f.column)}::{f.db_type(connection)}" for f in columns
    )
    # Only quoted identifiers and column types from the model are formatted in; every value is
    # a parameter.
    sql = (
        f"UPDATE {qn(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM (VALUES {', '.join([row] * len(objs))}) AS v({aliases}) "
        f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}::{pk.db_type(connection)}"
    )
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        params.extend(_prepared(f, obj) for f in columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _prepared(field: Any, obj: models.Model) -> Any:
    return field.get_db_prep_save(getattr(obj, field.attname), connection)


__all__ = ["insert_rows", "update_rows"]
