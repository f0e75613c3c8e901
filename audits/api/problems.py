"""RFC 9457 problem details for every API error."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://porapp.dev/problems/"


def problem_response(
    status_code: int,
    title: str,
    detail: str,
    slug: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A DRF Response carrying an RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _flatten(errors: Any, prefix: str = "") -> list[dict[str, str | None]]:
    """Turn DRF's nested error dict/list into [{"field": "a.b", "message": "..."}]."""
    if isinstance(errors, dict):
        out: list[dict[str, str | None]] = []
        for key, value in errors.items():
            name = key if key != "non_field_errors" else ""
            out += _flatten(value, f"{prefix}.{name}".strip(".") if name else prefix)
        return out
    if isinstance(errors, list):
        out = []
        for index, value in enumerate(errors):
            if isinstance(value, dict | list):
                out += _flatten(value, f"{prefix}[{index}]")
            else:
                out += _flatten(value, prefix)
        return out
    return [{"field": prefix or None, "message": str(errors)}]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: the standard handling, re-shaped as problem+json."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    instance = request.get_full_path() if request is not None else None
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first: dict[str, str | None] = (
            errors[0] if errors else {"field": None, "message": "Invalid input."}
        )
        where = f"{first['field']}: " if first.get("field") else ""
        return problem_response(
            status.HTTP_400_BAD_REQUEST,
            "Invalid input",
            f"{where}{first['message']}",
            "invalid-input",
            instance=instance,
            errors=errors,
        )
    if isinstance(exc, Http404 | exceptions.NotFound):
        return problem_response(
            404, "Not found", "No such resource.", "not-found", instance=instance
        )
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    assert isinstance(exc, exceptions.APIException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    slug = exc.default_code.replace("_", "-")
    title = str(exc.default_detail).rstrip(".")
    if "{" in title:
        # A template for the detail ('Unsupported media type "{media_type}" in request.'),
        # not a title: use the status phrase.
        title = HTTPStatus(response.status_code).phrase
    if isinstance(exc, exceptions.UnsupportedMediaType):
        view = context.get("view")
        accepted = [parser.media_type for parser in getattr(view, "parser_classes", [])]
        if accepted:
            detail = f"{detail} Send one of: {', '.join(accepted)}."
    return problem_response(
        response.status_code, title, str(detail), slug, instance=instance, headers=headers
    )


def file_too_large(size: int, limit: int):
    """413 for an upload over ``limit`` bytes (statements and liability snapshots alike)."""
    return problem_response(
        413,
        "File too large",
        f"file: the file is {size} bytes; the limit is {limit} bytes.",
        "file-too-large",
        errors=[{"field": "file", "message": f"Larger than the {limit}-byte limit."}],
    )
