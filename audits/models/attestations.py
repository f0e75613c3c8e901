"""Signed attestations of reserves: the public keys that sign them and the append-only chain."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audits.models.statements import ImmutableError


class AttestationKey(models.Model):
    """The public half of a signing key and when it may sign. The private key lives only in
    the PEM file the environment names (ATTESTATION_KEY_FILES), never here."""

    kid = models.CharField(
        "key id", max_length=64, unique=True, editable=False,
        help_text="RFC 7638 JWK thumbprint of the public key.",
    )  # fmt: skip
    public_key = models.BinaryField("raw Ed25519 public key (32 bytes)", editable=False)
    not_before = models.DateTimeField(help_text="Attestations issued before this are refused.")
    not_after = models.DateTimeField(
        null=True, blank=True, help_text="Empty: valid until retired. Set when rotating out."
    )
    revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="Set if the private key may have leaked."
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who ended the window and why (attestation_keys.retire / revoke); the window only shrinks.
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retire_reason = models.TextField(blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-not_before", "-id"]
        verbose_name = "attestation key"

    def __str__(self) -> str:
        return self.kid


class Attestation(models.Model):
    """One signed statement of every asset's reserves. Append-only: never updated or deleted
    (and on PostgreSQL a trigger refuses both). `sequence` is gapless; `previous` links the
    chain, and the payload names the previous payload's digest."""

    class Reason(models.TextChoices):
        CHANGED = "changed", "Status or eligibility changed"
        PERIODIC = "periodic", "Figures changed"
        HEARTBEAT = "heartbeat", "Heartbeat"

    sequence = models.PositiveBigIntegerField(unique=True)
    issued_at = models.DateTimeField(db_index=True)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next"
    )
    # The exact canonical JSON that was signed, and the envelope exactly as published.
    payload = models.BinaryField(editable=False)
    envelope = models.TextField(editable=False)
    payload_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    key = models.ForeignKey(AttestationKey, on_delete=models.PROTECT, related_name="attestations")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # [[name, sha256 hex], ...]: the evidence files the statement names as subjects.
    subjects = models.JSONField(default=list)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"attestation #{self.sequence}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ImmutableError("attestations are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("attestations are never deleted")
