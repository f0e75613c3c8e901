"""Break the demo on purpose: mint tokens no custodian holds and watch the asset freeze."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audits import demo


def _tokens(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"not a number of tokens: {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Mint unbacked tokens of a demo asset on the demo chain (make demo must be running); "
        "the next reconciliation finds the breach and freezes the asset."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("asset", help="demo asset code, e.g. AAPLx")
        parser.add_argument(
            "--amount", type=_tokens, default=demo.BREACH_TOKENS, help="whole tokens to mint"
        )

    def handle(self, *args, asset: str, amount: Decimal, **options) -> None:
        demo.plain_console_logging()
        try:
            total = demo.mint_unbacked(asset, settings.VAR_DIR, amount)
        except Exception as exc:  # the chain down, an unknown code: say it plainly
            raise CommandError(f"could not mint {asset}: {exc}") from exc
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write(
            self.style.WARNING(
                f"Minted {demo.tokens_text(amount)} {asset} on demo chain {demo.BREACH_CHAIN_ID} "
                f"that no custodian holds ({demo.tokens_text(total)} unbacked in all), and read "
                "the new supply."
            )
        )
        self.stdout.write(
            "The reconciliation queued by that reading (or the every-minute run) finds the "
            f"shortfall and freezes {asset}. Look at:\n"
            f"  home page:        {site}/\n"
            f"  eligibility feed: {site}/api/v1/collateral/eligibility\n"
            f"  webhook receiver: {settings.VAR_DIR / 'demo-webhooks.log'}\n"
            f"Undo it with: DEBUG=1 .venv/bin/python manage.py demo_restore {asset}"
        )
