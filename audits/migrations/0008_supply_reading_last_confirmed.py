"""Fill last_confirmed_at where it was never set: manual readings from their as-of date,
chain readings from when they were taken (the field used to be set only on chain reads)."""

from django.db import migrations
from django.db.models import F


def fill(apps, schema_editor):
    reading = apps.get_model("audits", "SupplyReading")
    reading.objects.filter(source="manual", last_confirmed_at__isnull=True).update(
        last_confirmed_at=F("as_of")
    )
    reading.objects.filter(
        source="chain", status="ok", last_confirmed_at__isnull=True
    ).update(last_confirmed_at=F("attempted_at"))


class Migration(migrations.Migration):
    dependencies = [("audits", "0007_supply_reading_confirmations")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
