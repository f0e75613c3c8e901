"""The attestation signing key (from a PEM file named by the environment) and the public keys
published as a JWKS. The private key is never stored, logged or printed."""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc.jwk import OKPKey

from audits.core import attestation as core
from audits.models import AttestationKey

ENV_VAR = "ATTESTATION_KEY_FILES"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str
    record: AttestationKey

    def __repr__(self) -> str:  # never show the private key, even in a traceback's locals
        return f"SigningKey(kid={self.kid!r})"


def key_id(public_key) -> str:
    """The RFC 7638 thumbprint, by joserfc, held to the framework-free core's own (the one the
    offline verifier uses): two implementations must agree before a key is used."""
    kid = OKPKey.import_key(core.jwk_of(public_key)).thumbprint()
    if kid != core.key_id(public_key):
        raise ImproperlyConfigured("attestation key id: joserfc and audits.core disagree")
    return kid


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``, or ImproperlyConfigured saying what is wrong
    (never quoting the file's content)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{ENV_VAR}: cannot read the attestation key file {str(path)!r} "
            f"({exc.strerror or type(exc).__name__})."
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"{ENV_VAR}: {str(path)!r} is not an unencrypted PEM private key."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{ENV_VAR}: {str(path)!r} is not an Ed25519 private key.")
    return key


def signing_key(now: datetime | None = None) -> SigningKey:
    """The key that signs now: the first of ATTESTATION_KEY_FILES, its public half registered
    (valid from now) the first time it is used."""
    files = list(settings.ATTESTATION_KEYS)
    if not files:
        raise ImproperlyConfigured(
            f"Set {ENV_VAR} to the PEM file of the attestation signing key "
            "(`manage.py attestation_keygen PATH` makes one)."
        )
    private = load_private_key(files[0])
    public = private.public_key()
    kid = key_id(public)
    return SigningKey(private, kid, register(public, now))


def register(public_key, now: datetime | None = None, note: str = "") -> AttestationKey:
    """The AttestationKey row of ``public_key``, created (valid from ``now``) if new."""
    kid = key_id(public_key)
    found = AttestationKey.objects.filter(kid=kid).first()
    if found is not None:
        return found
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        with transaction.atomic():
            return AttestationKey.objects.create(
                kid=kid, public_key=raw, not_before=now or timezone.now(), note=note
            )
    except IntegrityError:  # registered meanwhile by another worker
        return AttestationKey.objects.get(kid=kid)


def public_x(key: AttestationKey) -> str:
    return base64.urlsafe_b64encode(bytes(key.public_key)).rstrip(b"=").decode("ascii")


def jwk(key: AttestationKey) -> dict:
    """One JWKS entry: the public key, its id and its validity window (epoch seconds). A
    revoked key's window ends at its revocation."""
    entry = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": public_x(key),
        "kid": key.kid,
        "use": "sig",
        "alg": "EdDSA",
        "nbf": int(key.not_before.timestamp()),
    }
    ends = [t for t in (key.not_after, key.revoked_at) if t is not None]
    if ends:
        entry["exp"] = int(min(ends).timestamp())
    return entry


def jwks() -> dict:
    """Every key that ever signed (old attestations stay verifiable), oldest first."""
    return {"keys": [jwk(k) for k in AttestationKey.objects.order_by("not_before", "id")]}


def write_key(path: Path) -> str:
    """Create ``path`` holding a new private key, readable by its owner only; return the kid.
    Refuses an existing file: overwriting a key would lose it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never replace a key; 0600 from creation, so no moment of wider access.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key_id(key.public_key())


class KeyChangeRefused(Exception):
    """A retirement or revocation that would be wrong; the message says why, for the admin."""


def configured_kid() -> str | None:
    """The id of the key that signs now (the first of ATTESTATION_KEY_FILES), or None when
    none is configured or it cannot be read."""
    files = list(settings.ATTESTATION_KEYS)
    if not files:
        return None
    try:
        return key_id(load_private_key(files[0]).public_key())
    except ImproperlyConfigured:
        return None


def _locked(key_pk: int) -> AttestationKey:
    return AttestationKey.objects.select_for_update().get(pk=key_pk)


def retire(key_pk: int, user, reason: str, at: datetime | None = None) -> AttestationKey:
    """End the key's window at ``at`` (default now): it signs nothing from then on, and
    everything it signed before still verifies.

    Refused if that would invalidate an attestation the key already signed (one issued at or
    after ``at``): retirement is routine and must never turn honest history invalid; a key
    that must stop being trusted for the past is revoked instead. A window only ever shrinks:
    widening a published window would make attestations valid that verifiers refused before.
    """
    reason = reason.strip()
    if not reason:
        raise KeyChangeRefused("Say why the key is retired.")
    at = at or timezone.now()
    with transaction.atomic():
        key = _locked(key_pk)
        if key.revoked_at is not None:
            raise KeyChangeRefused(f"{key.kid} is already revoked; its window is closed.")
        if key.not_after is not None and key.not_after <= at:
            raise KeyChangeRefused(
                f"{key.kid} is already retired from {core.rfc3339(key.not_after)}; a window "
                "only shrinks."
            )
        if at < key.not_before:
            raise KeyChangeRefused(
                f"{key.kid} is valid only from {core.rfc3339(key.not_before)}; retire it from "
                "then or later."
            )
        signed_after = key.attestations.filter(issued_at__gte=at).count()
        if signed_after:
            raise KeyChangeRefused(
                f"{key.kid} signed {signed_after} attestation(s) at or after "
                f"{core.rfc3339(at)}; retiring from then would make them fail verification. "
                "Retire from a later time, or revoke the key if it may have leaked."
            )
        AttestationKey.objects.filter(pk=key.pk).update(
            not_after=at, retired_by=user, retire_reason=reason
        )
        key.not_after, key.retired_by, key.retire_reason = at, user, reason
    logger.info("attestation key %s retired from %s", key.kid, core.rfc3339(at),
                extra={"kid": key.kid})  # fmt: skip
    return key


def revoke(
    key_pk: int, user, reason: str, since: datetime | None = None
) -> tuple[AttestationKey, int]:
    """Stop trusting the key from ``since`` (default now; set it to when the key may first
    have leaked, which can be in the past). Attestations it signed from then on no longer
    verify; the count of those is returned so the admin can say so. Revoking again may only
    move the time earlier."""
    reason = reason.strip()
    if not reason:
        raise KeyChangeRefused("Say why the key is revoked.")
    since = since or timezone.now()
    with transaction.atomic():
        key = _locked(key_pk)
        if key.revoked_at is not None and key.revoked_at <= since:
            raise KeyChangeRefused(
                f"{key.kid} is already revoked from {core.rfc3339(key.revoked_at)}; a "
                "revocation can only move earlier."
            )
        AttestationKey.objects.filter(pk=key.pk).update(
            revoked_at=since, revoked_by=user, revoke_reason=reason
        )
        key.revoked_at, key.revoked_by, key.revoke_reason = since, user, reason
        invalidated = key.attestations.filter(issued_at__gte=since).count()
    logger.warning(
        "attestation key %s revoked from %s (%d attestation(s) no longer verify)",
        key.kid,
        core.rfc3339(since),
        invalidated,
        extra={"kid": key.kid},
    )
    return key, invalidated
