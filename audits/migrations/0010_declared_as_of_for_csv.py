"""Statements stored before `declared_as_of` existed: a CSV's as-of is the one its upload gave.

JSON and semt.002 carry their own as-of and are mostly uploaded without one, so theirs stays
unknown (None): a resend of one of them is then taken as a new upload, never wrongly as a repeat.
"""

from django.db import migrations
from django.db.models import F


def forwards(apps, schema_editor):
    statement = apps.get_model("audits", "CustodianStatement")
    statement.objects.filter(format="csv", declared_as_of__isnull=True).update(
        declared_as_of=F("as_of")
    )


class Migration(migrations.Migration):
    dependencies = [("audits", "0009_statement_pages_and_resends")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
