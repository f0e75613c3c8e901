"""Existing statement lines get their exact quantities back (issue #9 point 7).

PostgreSQL stored them exactly in numeric(38, 18): nothing to do. SQLite stored them as 8-byte
floats (15 significant digits), so the digits are gone from the column; they are re-read from
the raw bytes every statement keeps, by the same parsers, and written as exact text. A line
that cannot be matched to the re-read file stops the migration rather than keep a rounded
figure.
"""

from django.db import migrations

BATCH = 2000


def restore_exact_quantities(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    from audits.core.statement_formats import parse_statement

    statement_model = apps.get_model("audits", "CustodianStatement")
    line_model = apps.get_model("audits", "StatementLine")
    with_lines = line_model.objects.values_list("statement_id", flat=True).distinct()
    for statement in statement_model.objects.filter(pk__in=with_lines).select_related("raw"):
        parsed = parse_statement(statement.format, bytes(statement.raw.content), statement.as_of)
        exact = {
            (ln.line_no, ln.isin, ln.account, ln.balance_type): ln.quantity for ln in parsed.lines
        }
        lines = list(line_model.objects.filter(statement=statement))
        for line in lines:
            key = (line.line_no, line.isin, line.account, line.balance_type)
            if key not in exact:
                raise RuntimeError(
                    f"statement {statement.pk}, line {line.line_no}: not found when re-reading "
                    "its raw file; its exact quantity cannot be restored"
                )
            line.quantity = exact[key]
        line_model.objects.bulk_update(lines, ["quantity"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("audits", "0007_statement_check_attempts_exact_quantity")]

    operations = [
        migrations.RunPython(restore_exact_quantities, migrations.RunPython.noop, elidable=False)
    ]
