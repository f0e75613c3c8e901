"""Write a new Ed25519 attestation signing key to a PEM file (mode 0600) and print its key id."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audits.attestation_keys import ENV_VAR, write_key


class Command(BaseCommand):
    help = "Generate an Ed25519 attestation signing key as a PEM file (mode 0600)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="Where to write the private key (must not exist).")

    def handle(self, *args, path: str, **options) -> None:
        target = Path(path)
        try:
            kid = write_key(target)
        except FileExistsError:
            raise CommandError(f"{path} exists; refusing to overwrite a key.") from None
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        self.stdout.write(f"Wrote a new attestation signing key to {path} (mode 0600).")
        self.stdout.write(f"key id (kid): {kid}")
        self.stdout.write(
            f"To sign with it, put it FIRST in {ENV_VAR} (comma-separated), keeping the old "
            f"key files after it, e.g.\n  {ENV_VAR}={target.resolve()},<old key files>"
        )
