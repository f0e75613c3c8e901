from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from audits.demo import (
    CUSTODIANS,
    demo_token,
    ensure_operator,
    ensure_user,
    load_demo_data,
    load_demo_statements,
    publish_demo_liabilities,
    write_logins,
)
from audits.models import Custodian


class Command(BaseCommand):
    help = "Load the demo data set and create the demo logins (prints their credentials)."

    def handle(self, *args, **options) -> None:
        load_demo_data()
        creds = [ensure_user("admin", settings.VAR_DIR / "demo-admin.txt", staff=True)]
        # custodianN is the Nth custodian of the demo set (the README's examples rely on it).
        demo_custodians = [Custodian.objects.get(lei=lei) for _, lei, _ in CUSTODIANS]
        for index, custodian in enumerate(demo_custodians, start=1):
            creds.append(
                ensure_user(
                    f"custodian{index}",
                    settings.VAR_DIR / f"demo-custodian{index}.txt",
                    staff=False,
                    custodian=custodian,
                )
            )
        creds.append(ensure_operator(settings.VAR_DIR / "demo-platform.txt"))
        loaded = load_demo_statements(settings.VAR_DIR)
        custodian1 = get_user_model().objects.get(username="custodian1")
        token = demo_token(custodian1, settings.VAR_DIR / "demo-custodian1-token.txt")
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Logins:"))
        for cred in creds:
            self.stdout.write(f"  {cred.username:12} password: {cred.password}")
        self.stdout.write(f"  custodian1 API token: {token}")
        logins = write_logins(settings.VAR_DIR / "demo-logins.txt", creds, token)
        self.stdout.write(f"  (also in {_shown(logins)})")
        for statement in loaded:
            self.stdout.write(f"  statement #{statement.pk}: {statement}")
        operator = get_user_model().objects.get(username="platform")
        bundle = publish_demo_liabilities(operator, settings.VAR_DIR)
        shown = _shown(bundle)
        self.stdout.write(
            f"  users' balances published; alice's proof bundle: {shown} (check it at "
            "/proofs/verify/, or offline against an attestation: python -m audits.verify "
            f"{shown} --attestation A.json --keys jwks.json)"
        )


def _shown(path: Path) -> Path:
    """`path` relative to the project when it is inside it: shorter to read and to paste."""
    return path.relative_to(settings.BASE_DIR) if path.is_relative_to(settings.BASE_DIR) else path
