"""Undo `demo_breach`: burn the unbacked tokens; an admin then approves the unfreeze."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audits import demo, eligibility
from audits.models import Asset


class Command(BaseCommand):
    help = "Burn the tokens demo_breach minted; after N healthy runs an admin may unfreeze."

    def add_arguments(self, parser) -> None:
        parser.add_argument("asset", help="demo asset code, e.g. AAPLx")

    def handle(self, *args, asset: str, **options) -> None:
        demo.plain_console_logging()
        try:
            burned = demo.burn_unbacked(asset, settings.VAR_DIR)
        except Exception as exc:  # the chain down, an unknown code: say it plainly
            raise CommandError(f"could not burn {asset}: {exc}") from exc
        if not burned:
            self.stdout.write(f"Nothing to burn: no unbacked {asset} minted by demo_breach.")
            return
        runs = eligibility.policy_for(Asset.objects.get(code=asset)).healthy_runs_to_unfreeze
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write(
            self.style.SUCCESS(
                f"Burned the {demo.tokens_text(burned)} unbacked {asset} and read the new supply: "
                "the next reconciliation finds it fully backed again."
            )
        )
        self.stdout.write(
            f"{asset} stays frozen until {runs} healthy reconciliations in a row (about {runs} "
            "minutes with the every-minute run), and then until an admin approves: in the admin, "
            f"Collateral eligibility ({site}/admin/audits/eligibility/), tick {asset}, action "
            '"Approve unfreeze".'
        )
