"""Custodian statements over the API: upload, list and read your own, download the raw bytes."""

from __future__ import annotations

import re
from typing import Any

import http_sf
from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from audits import statements
from audits.api.problems import file_too_large, problem_response
from audits.choices import StatementFormat, StatementStatus
from audits.core.custodian_signatures import SIGNATURE_HEADER
from audits.core.statement_formats import RESERVE_BALANCE_TYPES
from audits.downloads import raw_download
from audits.models import Custodian, CustodianStatement, StatementLine
from audits.permissions import IsCustodianOrAdmin, custodian_of, is_admin, visible_to

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Besides the draft's quoted string, a bare key of these characters (as many clients send a
# UUID) is taken as is.
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9._~+/=:-]{1,255}")


def parse_idempotency_key(value: str) -> str:
    """The key in an `Idempotency-Key` header (an RFC 9651 String); ValueError if malformed."""
    if _BARE_KEY_RE.fullmatch(value.strip()):
        return value.strip()
    item: object = None
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="item")
    except (http_sf.StructuredFieldError, UnicodeEncodeError):
        pass
    else:
        item = parsed[0] if isinstance(parsed, tuple) else None
    if not isinstance(item, str) or not 1 <= len(item) <= 255:
        raise ValueError(
            f"{IDEMPOTENCY_HEADER}: send a quoted string of 1 to 255 printable ASCII "
            'characters, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324".'
        )
    return item


# An upload answered with the statement the page joins (`pages` lists what has arrived).
_PAGE_EXAMPLE = {
    "id": 41,
    "custodian": "5493001KJTIIGC8Y1R12",
    "as_of": "2026-11-24T21:00:00Z",
    "received_at": "2026-11-25T06:02:11Z",
    "format": "semt002",
    "status": "incomplete",
    "source": "custodian-uploaded",
    "signature_status": "none",
    "signature_key": None,
    "sha256": None,
    "size": None,
    "line_count": 0,
    "error_report": [],
    "superseded_by": None,
    "retry_of": None,
    "statement_ref": "CSH-20261124-PORT7781",
    "part_of": None,
    "page": None,
    "page_count": None,
    "pages": [
        {
            "id": 40,
            "page": 1,
            "last_page": False,
            "received_at": "2026-11-25T06:02:11Z",
            "signature_status": "none",
            "sha256": "9f2c7e…",
            "size": 48213,
            "raw_url": "https://porapp.example/api/v1/statements/40/raw/",
        }
    ],
    "pages_missing": [],
    "pages_summary": "page 1 received; the last page has not arrived, so the total is unknown",
    "raw_url": None,
    "lines_url": "https://porapp.example/api/v1/statements/41/lines/",
}


class StatementPageSerializer(serializers.ModelSerializer):
    """One page of a statement sent as several messages: its own bytes and signature."""

    page = serializers.IntegerField(source="page_no", read_only=True)
    sha256 = serializers.CharField(source="raw.sha256", read_only=True)
    size = serializers.IntegerField(source="raw.size", read_only=True)
    raw_url = serializers.HyperlinkedIdentityField(view_name="statement-raw")

    class Meta:
        model = CustodianStatement
        fields = ["id", "page", "last_page", "received_at", "signature_status", "sha256", "size",
                  "raw_url"]  # fmt: skip
        read_only_fields = fields


class StatementSerializer(serializers.ModelSerializer):
    custodian = serializers.CharField(source="custodian.lei", read_only=True)
    # A statement sent as several pages has no bytes of its own (see `pages`): these are null.
    sha256 = serializers.CharField(source="raw.sha256", read_only=True, allow_null=True)
    size = serializers.IntegerField(source="raw.size", read_only=True, allow_null=True)
    signature_key = serializers.CharField(source="signature_key.key_id", default=None)
    # Not `errors`: that name is the serializer's own validation-error property.
    error_report = serializers.JSONField(source="rejection_report", read_only=True)
    superseded_by: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    retry_of: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The rejected statement this upload is a new attempt at."
    )
    part_of: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="For one page of a multi-page statement: that statement."
    )
    page = serializers.IntegerField(source="page_no", read_only=True, allow_null=True)
    pages = serializers.SerializerMethodField()
    pages_missing = serializers.SerializerMethodField()
    pages_summary = serializers.SerializerMethodField()
    raw_url = serializers.SerializerMethodField()
    lines_url = serializers.HyperlinkedIdentityField(view_name="statement-lines")
    counts_as_reserves_for = serializers.SerializerMethodField(
        help_text="ISINs for which this is, now, the statement that counts as reserves of its "
        "custodian (the latest accepted statement listing the ISIN, as-of not in the future)."
    )

    class Meta:
        model = CustodianStatement
        fields = [
            "id", "custodian", "as_of", "received_at", "format", "status", "source",
            "signature_status", "signature_key", "sha256", "size", "line_count", "error_report",
            "superseded_by", "retry_of", "statement_ref", "part_of", "page", "page_count",
            "pages", "pages_missing", "pages_summary", "counts_as_reserves_for",
            "check_attempts", "check_error", "raw_url", "lines_url",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(StatementPageSerializer(many=True, allow_null=True))
    def get_pages(self, statement: CustodianStatement) -> list[Any] | None:
        if not statement.is_paged:
            return None
        pages = sorted(
            (p for p in statement.pages.all() if p.status == StatementStatus.PAGE),
            key=lambda p: p.page_no or 0,
        )
        return list(StatementPageSerializer(pages, many=True, context=self.context).data)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(), allow_null=True))
    def get_pages_missing(self, statement: CustodianStatement) -> list[int] | None:
        progress = statements.page_progress(statement)
        return progress.missing if progress else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_pages_summary(self, statement: CustodianStatement) -> str | None:
        progress = statements.page_progress(statement)
        return progress.summary if progress else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_raw_url(self, statement: CustodianStatement) -> str | None:
        if statement.is_paged:
            return None
        return reverse("statement-raw", args=[statement.pk], request=self.context.get("request"))

    def get_counts_as_reserves_for(self, statement: CustodianStatement) -> list[str]:
        if not hasattr(statement, "counts_for"):
            statements.mark_counting([statement])
        return [asset.isin for asset in statement.counts_for]


class OffsetDateTimeField(serializers.DateTimeField):
    """A date-time that must carry its UTC offset; none is refused, not taken as UTC."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                return statements.parse_upload_as_of(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return super().to_internal_value(value)


class StatementUploadSerializer(serializers.Serializer):
    # Empty files go through the normal path: stored, then rejected as an empty statement.
    file = serializers.FileField(
        allow_empty_file=True, help_text="The statement file, as produced."
    )
    format = serializers.ChoiceField(choices=StatementFormat.choices)
    as_of = OffsetDateTimeField(
        required=False,
        help_text="Statement as-of (ISO 8601 with offset). Required for CSV; JSON and "
        "semt.002 carry their own, which this must match if given.",
    )
    custodian = serializers.SlugRelatedField(
        slug_field="lei",
        queryset=Custodian.objects.all(),
        required=False,
        help_text="Admins only: the custodian (LEI) the statement is entered for.",
    )


class StatementLineSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    counts_as_reserve = serializers.SerializerMethodField()
    # The statement's source label travels with every figure taken from it.
    statement_source = serializers.CharField(source="statement.source")

    class Meta:
        model = StatementLine
        fields = ["page", "line_no", "isin", "asset", "quantity", "account", "balance_type",
                  "counts_as_reserve", "statement_source"]  # fmt: skip

    def get_counts_as_reserve(self, line: StatementLine) -> bool:
        """Settled, and its statement is the one that counts for this asset now."""
        counting = self.context["counting_assets"]
        return line.balance_type in RESERVE_BALANCE_TYPES and line.asset_id in counting


@extend_schema(tags=["statements"])
class StatementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your custodian's statements (admins: all). Another custodian's statement is a 404."""

    serializer_class = StatementSerializer
    permission_classes = [IsCustodianOrAdmin]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        pages = CustodianStatement.objects.select_related("raw").defer("raw__content")
        queryset = (
            CustodianStatement.objects.select_related("custodian", "raw", "signature_key")
            .defer("raw__content")
            .prefetch_related(Prefetch("pages", queryset=pages))
        )
        if self.action == "list":
            # A page is listed within its statement (`pages`); it stays readable by id.
            queryset = queryset.filter(part_of__isnull=True)
        return visible_to(self.request.user, queryset)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None and queryset.model is CustodianStatement:
            statements.mark_counting(page)
        return page

    @extend_schema(
        request=StatementUploadSerializer,
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Detached Ed25519 signature of the file: `<keyid>:<base64>`.",
            ),
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "A unique key per upload (draft-ietf-httpapi-idempotency-key-header), "
                    "for clients that retry blindly. The same key with the same request returns "
                    "what the first request stored; with a different request it is a 422. Keys "
                    "are kept per user for `IDEMPOTENCY_KEY_TTL` (24 h by default)."
                ),
                examples=[
                    OpenApiExample("a UUID, quoted", value='"8e03978e-40d5-43e8-bc93-6894a57f9324"')
                ],
            ),
        ],
        responses={
            201: StatementSerializer,
            200: OpenApiResponse(
                StatementSerializer,
                "A repeat: the same bytes with the same format, as-of and signature as an "
                "upload still received, incomplete or accepted (a `received` one is queued for "
                "processing again), or a replay of an Idempotency-Key.",
            ),
            202: OpenApiResponse(
                StatementSerializer,
                "Stored, but checking it hit an internal error (`check_error`): status "
                "`received`, retried automatically, or `failed` after the last attempt.",
            ),
            400: OpenApiResponse(description="Invalid form or Idempotency-Key (problem+json)."),
            409: OpenApiResponse(
                description="Idempotency-Key of a request whose upload is still being processed "
                "(problem+json); retry later."
            ),
            413: OpenApiResponse(description="File over the size limit (problem+json)."),
            422: OpenApiResponse(
                description="Rejected, stored with its error report; or an Idempotency-Key "
                "already used for a different request (problem+json, nothing stored)."
            ),
        },
        examples=[
            OpenApiExample(
                "page 1 of a 3-page semt.002 statement",
                response_only=True,
                status_codes=["201"],
                value=_PAGE_EXAMPLE,
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        """Upload a statement, or one page of a statement sent as several.

        The raw file is stored before any check runs. A page (semt.002 `Pgntn`) joins the
        statement with its statement id, as-of and format; the response is that statement,
        `incomplete` until every page has arrived.
        """
        upload = StatementUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        custodian = self._target_custodian(request, data.get("custodian"))
        if custodian is None:
            return problem_response(
                400,
                "Invalid input",
                "custodian: admins must name the custodian (LEI) the statement is for.",
                "invalid-input",
                errors=[{"field": "custodian", "message": "This field is required for admins."}],
            )
        key = None
        if (header := request.headers.get(IDEMPOTENCY_HEADER)) is not None:
            try:
                key = parse_idempotency_key(header)
            except ValueError as exc:
                return problem_response(
                    400, "Invalid input", str(exc), "invalid-input",
                    errors=[{"field": IDEMPOTENCY_HEADER, "message": str(exc)}],
                )  # fmt: skip
        file = data["file"]
        if file.size > settings.MAX_UPLOAD_BYTES:
            return self._too_large(file.size)
        try:
            submission = statements.submit_statement(
                custodian=custodian,
                user=request.user,
                raw=file.read(),
                fmt=data["format"],
                as_of=data.get("as_of"),
                signature_header=request.headers.get(SIGNATURE_HEADER),
                idempotency_key=key,
            )
        except statements.UploadTooLarge as exc:
            return self._too_large(exc.size)
        except statements.IdempotencyKeyReused as exc:
            return problem_response(
                422, "Idempotency-Key reused", str(exc), "idempotency-key-reused",
                errors=[{"field": IDEMPOTENCY_HEADER, "message": str(exc)}],
            )  # fmt: skip
        statement = self.get_queryset().get(pk=submission.statement.pk)
        body = StatementSerializer(statement, context={"request": request}).data
        headers = {"Idempotent-Replayed": "true"} if submission.replayed else None
        if submission.replayed and submission.created and statement.status == "received":
            return problem_response(
                409,
                "Upload still being processed",
                f"The upload with this {IDEMPOTENCY_HEADER} is stored as #{statement.pk} and "
                "still being checked; it has been queued again. Retry later.",
                "idempotency-key-in-progress",
                headers={**(headers or {}), "Retry-After": "10"},
                statement=body,
            )
        if submission.created and statement.status == StatementStatus.REJECTED:
            first = statement.rejection_report[0]["message"] if statement.rejection_report else ""
            return problem_response(
                422,
                "Statement rejected",
                f"The statement was stored as #{statement.pk} and rejected: {first}",
                "statement-rejected",
                instance=reverse("statement-detail", args=[statement.pk], request=request),
                headers=headers,
                errors=statement.rejection_report,
                statement=body,
            )
        code: int
        if not submission.created:
            code = status.HTTP_200_OK
        elif statement.status in (StatementStatus.RECEIVED, StatementStatus.FAILED):
            code = status.HTTP_202_ACCEPTED  # stored, not decided: never a 500 for the uploader
        else:
            code = status.HTTP_201_CREATED
        return Response(body, status=code, headers=headers)

    def _target_custodian(self, request: Request, named: Custodian | None) -> Custodian | None:
        if is_admin(request.user):
            return named
        # A custodian user always uploads for its own custodian, whatever the form says.
        return custodian_of(request.user)

    @staticmethod
    def _too_large(size: int) -> Response:
        return file_too_large(size, settings.MAX_UPLOAD_BYTES)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="raw")
    def raw(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The uploaded bytes, exactly as received."""
        # A statement sent as several pages has no bytes of its own: each page has (`pages`).
        queryset = CustodianStatement.objects.select_related("raw").filter(raw__isnull=False)
        statement = get_object_or_404(visible_to(request.user, queryset), pk=pk)
        return raw_download(statements.raw_file(statement))

    @extend_schema(responses=StatementLineSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="lines")
    def lines(self, request: Request, pk: str | None = None) -> Response:
        """The holdings read from the statement, in file order (page by page)."""
        statement = get_object_or_404(self.get_queryset(), pk=pk)
        queryset = statement.lines.select_related("asset", "statement").order_by(
            "page", "line_no", "id"
        )
        page = self.paginate_queryset(queryset)
        now_counting = statements.counting_statements([statement.custodian_id])
        counting = {asset_id for (_, asset_id), pk in now_counting.items() if pk == statement.pk}
        serializer = StatementLineSerializer(page, many=True, context={"counting_assets": counting})
        return self.get_paginated_response(serializer.data)
