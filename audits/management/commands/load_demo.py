from django.conf import settings
from django.core.management.base import BaseCommand

from audits.demo import ensure_user, load_demo_data
from audits.models import Custodian


class Command(BaseCommand):
    help = "Load the demo data set and create the demo logins (prints their credentials)."

    def handle(self, *args, **options) -> None:
        load_demo_data()
        creds = [ensure_user("admin", settings.VAR_DIR / "demo-admin.txt", staff=True)]
        for index, custodian in enumerate(Custodian.objects.order_by("lei"), start=1):
            creds.append(
                ensure_user(
                    f"custodian{index}",
                    settings.VAR_DIR / f"demo-custodian{index}.txt",
                    staff=False,
                    custodian=custodian,
                )
            )
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Logins:"))
        for cred in creds:
            self.stdout.write(f"  {cred.username:12} password: {cred.password}")
