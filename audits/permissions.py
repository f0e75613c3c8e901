"""Who may see what. Every view, API endpoint and admin page scopes data through here.

Admins are active staff users. Custodian users are linked to exactly one custodian and see
only that custodian's rows; anything else is answered as if it did not exist (404), so the
existence of another custodian's data is never revealed.
"""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission

from audits.models import Custodian

M = TypeVar("M", bound=Model)


def is_admin(user) -> bool:
    """True for an active staff user who is not a custodian user."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and not hasattr(user, "custodian_link")
    )


def is_platform_operator(user) -> bool:
    """True for an active platform operator (liability snapshots) who is not a custodian user."""
    return bool(
        user.is_authenticated
        and user.is_active
        and hasattr(user, "platform_operator")
        and not hasattr(user, "custodian_link")
    )


def custodian_of(user) -> Custodian | None:
    """The custodian a user acts for, or None for admins and anonymous users."""
    if not user.is_authenticated or not user.is_active:
        return None
    link = getattr(user, "custodian_link", None)
    return link.custodian if link is not None else None


def visible_to(user, queryset: QuerySet[M], custodian_field: str = "custodian") -> QuerySet[M]:
    """Narrow `queryset` to what `user` may see: all for admins, own rows for custodians."""
    if is_admin(user):
        return queryset
    custodian = custodian_of(user)
    if custodian is None:
        return queryset.none()
    return queryset.filter(**{custodian_field: custodian})


def get_visible_or_404(
    user, queryset: QuerySet[M], custodian_field: str = "custodian", **lookup
) -> M:
    """Fetch one row the user may see; anything else is a 404, never a 403."""
    try:
        return visible_to(user, queryset, custodian_field).get(**lookup)
    except ObjectDoesNotExist:
        raise Http404 from None


class IsAdmin(BasePermission):
    """DRF: admins only."""

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class IsAdminOrReadOnly(BasePermission):
    """DRF: anyone may read; only admins may write."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_admin(request.user)


class IsCustodianOrAdmin(BasePermission):
    """DRF: custodian users and admins; querysets must still go through `visible_to`."""

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user) or custodian_of(request.user) is not None


class IsOperatorOrAdmin(BasePermission):
    """DRF: platform operators and admins (liability snapshots); custodian users never."""

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user) or is_platform_operator(request.user)


class IsPlatformOperator(BasePermission):
    """DRF: platform operators (who upload liability snapshots) only."""

    def has_permission(self, request, view) -> bool:
        return is_platform_operator(request.user)
