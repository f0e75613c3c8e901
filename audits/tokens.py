"""API tokens of custodian users and platform operators: random secrets, stored hashed only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from audits.models import ApiToken
from audits.permissions import custodian_of, is_platform_operator

TOKEN_PREFIX = "por_"  # noqa: S105 - a public marker, not a secret
# Recording every use would turn each read into a write; once a minute is enough to audit.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user, name: str) -> tuple[ApiToken, str]:
    """Create a token for a custodian user or a platform operator; return it and the secret,
    which is never stored."""
    if custodian_of(user) is None and not is_platform_operator(user):
        raise ValueError("API tokens are for custodian users and platform operators only")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:12], token_hash=_hash(secret)
    )
    return token, secret


def authenticate(secret: str):
    """The active user owning this unrevoked token, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related(
            "user", "user__custodian_link__custodian", "user__platform_operator"
        )
        .filter(token_hash=_hash(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - _LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return token.user


def revoke(token: ApiToken) -> None:
    """Revoke a token; revoking twice keeps the first time."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
