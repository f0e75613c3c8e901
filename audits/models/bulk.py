"""Writing many rows in one statement, fast on PostgreSQL, portable elsewhere.

Django's `bulk_create` and `bulk_update` spend most of a 1,000-asset reconciliation in Python
compiling SQL (one CASE branch per row and column for an update, every value resolved as an
expression). On PostgreSQL these write the same rows with COPY and with one
`UPDATE … FROM (VALUES …)`. Values whose database form differs from the Python one
(exact decimals, JSON) still go through their field's `get_db_prep_save`, so exactness checks
are the same as through the ORM (ExactDecimalField refuses a value it cannot hold); integers,
text, booleans and aware datetimes go to psycopg as they are. Other databases use the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

# Fields psycopg takes as Python gives them (ids, numbers, text, flags, aware datetimes).
_PLAIN = (
    models.AutoField,
    models.BigAutoField,
    models.ForeignKey,
    models.IntegerField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DateTimeField,
)


def insert_objects(
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
        for obj, pk_value in zip(objs, _next_ids(model, len(objs)), strict=True):
            obj.pk = pk_value
        columns.insert(0, pk)
    _copy(model, columns, ([getattr(obj, f.attname) for f in columns] for obj in objs))


def insert_values(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` of values in the order of ``fields`` (a foreign key by its id), without
    building a model instance per row on PostgreSQL."""
    if not rows:
        return
    columns: list[Any] = [model._meta.get_field(name) for name in fields]
    if connection.vendor != "postgresql":
        names = [f.attname for f in columns]
        model._default_manager.bulk_create(
            [model(**dict(zip(names, row, strict=True))) for row in rows]
        )
        return
    _copy(model, columns, rows)


def _next_ids(model: type[models.Model], count: int) -> list[int]:
    pk: Any = model._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[models.Model], columns: list[Any], rows) -> None:
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    prepare = [None if isinstance(f, _PLAIN) else f for f in columns]
    # The wrapper itself, not the thread-local proxy: fields read its vendor per value.
    wrapper = connections[DEFAULT_DB_ALIAS]
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    value if field is None else field.get_db_prep_save(value, wrapper)
                    for field, value in zip(prepare, row, strict=True)
                ]
            )


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
    pk: Any = model._meta.pk
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
        params.extend(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


__all__ = ["insert_objects", "insert_values", "update_rows"]
