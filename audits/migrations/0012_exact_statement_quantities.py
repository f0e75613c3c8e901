"""Existing statement lines get their exact quantities back (issue #9 point 7).

PostgreSQL stored them exactly in numeric(38, 18): nothing to do. SQLite stored them as 8-byte
floats (15 significant digits), so the digits are gone from the column; they are re-read from
the raw bytes every statement keeps, by today's parsers, and written as exact text, but only
where the re-read figure is provably the stored one (the same 15 significant digits). Anything
else keeps its stored value and is named in the migration's output: a statement today's
parsers read differently (the semt.002 settled reading changed in the same issue) or refuse
must not be rewritten behind anyone's back; such statements are sent again by the custodian.
"""

from decimal import Decimal

from django.db import migrations

BATCH = 2000


def _digits15(value) -> str:
    # A float column, or SQLite's own REAL-to-text conversion, keeps 15 significant digits.
    return "%.15g" % float(Decimal(str(value)))


def restore_exact_quantities(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    from audits.core.statement_formats import parse_statement

    statement_model = apps.get_model("audits", "CustodianStatement")
    line_model = apps.get_model("audits", "StatementLine")
    with_lines = line_model.objects.values_list("statement_id", flat=True).distinct()
    kept: list[str] = []
    statements = statement_model.objects.filter(pk__in=with_lines, raw__isnull=False)
    for statement in statements.select_related("raw"):
        try:
            parsed = parse_statement(
                statement.format, bytes(statement.raw.content), statement.as_of
            )
        except Exception as exc:  # any refusal keeps the stored figures
            kept.append(f"statement {statement.pk}: not re-read ({type(exc).__name__})")
            continue
        exact = {
            (ln.line_no, ln.isin, ln.account, ln.balance_type): ln.quantity for ln in parsed.lines
        }
        lines = list(line_model.objects.filter(statement=statement))
        changed = []
        for line in lines:
            value = exact.get((line.line_no, line.isin, line.account, line.balance_type))
            if value is None or _digits15(value) != _digits15(line.quantity):
                kept.append(f"statement {statement.pk}, line {line.line_no}: kept as stored")
                continue
            line.quantity = value
            changed.append(line)
        line_model.objects.bulk_update(changed, ["quantity"], batch_size=BATCH)
    for note in kept:
        print(f"  exact quantities: {note}")


class Migration(migrations.Migration):
    dependencies = [("audits", "0011_statement_check_attempts_exact_quantity")]

    operations = [
        migrations.RunPython(restore_exact_quantities, migrations.RunPython.noop, elidable=False)
    ]
