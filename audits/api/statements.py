"""Custodian statements over the API: upload, list and read your own, download the raw bytes."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from audits import statements
from audits.api.problems import problem_response
from audits.choices import StatementFormat, StatementStatus
from audits.core.custodian_signatures import SIGNATURE_HEADER
from audits.core.statement_formats import RESERVE_BALANCE_TYPES
from audits.downloads import raw_download
from audits.models import Custodian, CustodianStatement, StatementLine
from audits.permissions import IsCustodianOrAdmin, custodian_of, is_admin, visible_to


class StatementSerializer(serializers.ModelSerializer):
    custodian = serializers.CharField(source="custodian.lei", read_only=True)
    sha256 = serializers.CharField(source="raw.sha256", read_only=True)
    size = serializers.IntegerField(source="raw.size", read_only=True)
    signature_key = serializers.CharField(source="signature_key.key_id", default=None)
    # Not `errors`: that name is the serializer's own validation-error property.
    error_report = serializers.JSONField(source="rejection_report", read_only=True)
    superseded_by: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    raw_url = serializers.HyperlinkedIdentityField(view_name="statement-raw")
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
            "superseded_by", "counts_as_reserves_for", "check_attempts", "check_error",
            "raw_url", "lines_url",
        ]  # fmt: skip
        read_only_fields = fields

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
        fields = ["line_no", "isin", "asset", "quantity", "account", "balance_type",
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
        queryset = CustodianStatement.objects.select_related(
            "custodian", "raw", "signature_key"
        ).defer("raw__content")
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
            )
        ],
        responses={
            201: StatementSerializer,
            200: OpenApiResponse(StatementSerializer, "The same bytes were uploaded before."),
            202: OpenApiResponse(
                StatementSerializer,
                "Stored, but checking it hit an internal error (`check_error`): status "
                "`received`, retried automatically, or `failed` after the last attempt.",
            ),
            413: OpenApiResponse(description="File over the size limit (problem+json)."),
            422: OpenApiResponse(description="Rejected; stored with its error report."),
        },
    )
    def create(self, request: Request) -> Response:
        """Upload a statement. The raw file is stored before any check runs."""
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
            )
        except statements.UploadTooLarge as exc:
            return self._too_large(exc.size)
        statement = submission.statement
        body = StatementSerializer(statement, context={"request": request}).data
        if submission.created and statement.status == StatementStatus.REJECTED:
            first = statement.rejection_report[0]["message"] if statement.rejection_report else ""
            return problem_response(
                422,
                "Statement rejected",
                f"The statement was stored as #{statement.pk} and rejected: {first}",
                "statement-rejected",
                instance=body["raw_url"].removesuffix("raw/"),
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
        return Response(body, status=code)

    def _target_custodian(self, request: Request, named: Custodian | None) -> Custodian | None:
        if is_admin(request.user):
            return named
        # A custodian user always uploads for its own custodian, whatever the form says.
        return custodian_of(request.user)

    @staticmethod
    def _too_large(size: int) -> Response:
        limit = settings.MAX_UPLOAD_BYTES
        return problem_response(
            413,
            "File too large",
            f"file: the file is {size} bytes; the limit is {limit} bytes.",
            "file-too-large",
            errors=[{"field": "file", "message": f"Larger than the {limit}-byte limit."}],
        )

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="raw")
    def raw(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The uploaded bytes, exactly as received."""
        statement = get_object_or_404(
            visible_to(request.user, CustodianStatement.objects.select_related("raw")), pk=pk
        )
        return raw_download(statements.raw_file(statement))

    @extend_schema(responses=StatementLineSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="lines")
    def lines(self, request: Request, pk: str | None = None) -> Response:
        """The holdings read from the statement, in file order."""
        statement = get_object_or_404(self.get_queryset(), pk=pk)
        queryset = statement.lines.select_related("asset", "statement").order_by("line_no", "id")
        page = self.paginate_queryset(queryset)
        now_counting = statements.counting_statements([statement.custodian_id])
        counting = {asset_id for (_, asset_id), pk in now_counting.items() if pk == statement.pk}
        serializer = StatementLineSerializer(page, many=True, context={"counting_assets": counting})
        return self.get_paginated_response(serializer.data)
