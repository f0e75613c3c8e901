"""Liability snapshots over the API: the platform operator uploads, operators and admins read
(docs/liabilities.md). The snapshot's secret is never part of any answer."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from audits import liabilities, liability_files
from audits.api.problems import file_too_large
from audits.api.statements import OffsetDateTimeField
from audits.models import LiabilitySnapshot, LiabilityTree
from audits.permissions import IsOperatorOrAdmin

_EXAMPLE = {
    "id": 7,
    "status": "published",
    "phase": "published",
    "progress": 100,
    "as_of": "2026-11-24T21:00:00Z",
    "received_at": "2026-11-25T06:00:02Z",
    "published_at": "2026-11-25T06:00:09Z",
    "raw_sha256": "5f1c3a0e9d2b7c4e8a6f1d0b3c5e7a9f2d4b6c8e0a1f3d5b7c9e1a3f5d7b9c1e",
    "raw_size": 48213907,
    "row_count": 1000000,
    "error_count": 0,
    "errors": [],
    "failure": "",
    "trees": [
        {
            "asset": "AAPLx",
            "root_hash": "9a0f6b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdd",
            "root_sum": "263000000000000000000",
            "account_count": 412311,
            "leaf_count": 524288,
            "tree_sha256": "0c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f5061728394a5b6c7d8e9f0a",
        }
    ],
    "url": "https://porapp.example/api/v1/snapshots/7/",
}
_REJECTED = {
    **_EXAMPLE,
    "status": "rejected",
    "phase": "rejected",
    "published_at": None,
    "row_count": 3,
    "error_count": 2,
    "errors": [
        {"line": 3, "field": "asset", "message": "unknown asset 'NOPEx'"},
        {"line": 4, "field": "balance", "message": "more than 18 decimal places"},
    ],
    "trees": [],
}
_QUEUED = {
    **_EXAMPLE,
    "status": "received",
    "phase": "queued",
    "progress": 0,
    "published_at": None,
    "row_count": None,
    "trees": [],
}


class LiabilityTreeSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    root_sum = serializers.SerializerMethodField(
        help_text="Total liabilities in the asset's smallest unit, as an exact integer string."
    )
    tree_sha256 = serializers.CharField(source="file_sha256")

    class Meta:
        model = LiabilityTree
        fields = ["asset", "root_hash", "root_sum", "account_count", "leaf_count", "tree_sha256"]
        read_only_fields = fields

    def get_root_sum(self, tree: LiabilityTree) -> str:
        return str(int(tree.root_sum))


class LiabilitySnapshotSerializer(serializers.ModelSerializer):
    trees = LiabilityTreeSerializer(many=True, read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="liability-snapshot-detail")

    class Meta:
        model = LiabilitySnapshot
        # Never `secret`, `claimed_until` or `attempts`: server-side only.
        fields = [
            "id", "status", "phase", "progress", "as_of", "received_at", "published_at",
            "raw_sha256", "raw_size", "row_count", "error_count", "errors", "failure", "trees",
            "url",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "errors": {"help_text": "The first 1,000 bad rows: [{line, field, message}]."},
            "progress": {"help_text": "Percent done of the current phase."},
            "phase": {"help_text": "queued, checking, building <asset>, or the final status."},
        }


class SnapshotUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="CSV `account_id,asset,balance` (docs/liabilities.md, Snapshot file).",
    )
    as_of = OffsetDateTimeField(help_text="The balances' as-of, ISO 8601 with a UTC offset.")


@extend_schema(tags=["liabilities"])
class LiabilitySnapshotViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Liability snapshots: platform operators and admins only."""

    serializer_class = LiabilitySnapshotSerializer
    permission_classes = [IsOperatorOrAdmin]
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        trees = LiabilityTree.objects.select_related("asset").order_by("asset__code")
        return LiabilitySnapshot.objects.defer("secret").prefetch_related(
            Prefetch("trees", queryset=trees)
        )

    @extend_schema(
        request={"multipart/form-data": SnapshotUploadSerializer},
        responses={
            202: OpenApiResponse(
                LiabilitySnapshotSerializer,
                "Stored and queued: the build runs in the background; follow `Location` "
                "(status, phase, progress).",
            ),
            200: OpenApiResponse(
                LiabilitySnapshotSerializer,
                "A repeat: the same bytes and as-of as an earlier snapshot, which is returned.",
            ),
            400: OpenApiResponse(description="Invalid form: no file, as-of without offset."),
            401: OpenApiResponse(description="No or invalid credentials."),
            403: OpenApiResponse(description="Not a platform operator or admin."),
            413: OpenApiResponse(description="Over LIABILITY_MAX_UPLOAD; nothing is stored."),
        },
        examples=[
            OpenApiExample("queued", value=_QUEUED, response_only=True, status_codes=["202"]),
            OpenApiExample(
                "a repeat of a published snapshot",
                value=_EXAMPLE,
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        """Upload a snapshot of users' balances.

        The file is streamed to storage before anything else, then checked and built into
        one Merkle sum tree per asset by a background job.
        """
        upload = SnapshotUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > settings.LIABILITY_MAX_UPLOAD:
            return self._too_large(file.size)
        try:
            snapshot, created = liabilities.receive(
                user=request.user, chunks=file.chunks(), as_of=upload.validated_data["as_of"]
            )
        except liability_files.TooLarge:
            return self._too_large(file.size)
        snapshot = self.get_queryset().get(pk=snapshot.pk)
        body = LiabilitySnapshotSerializer(snapshot, context={"request": request}).data
        location = reverse("liability-snapshot-detail", args=[snapshot.pk], request=request)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(body, status=code, headers={"Location": location})

    @staticmethod
    def _too_large(size: int) -> Response:
        return file_too_large(size, settings.LIABILITY_MAX_UPLOAD)

    @extend_schema(
        responses={
            200: LiabilitySnapshotSerializer,
            404: OpenApiResponse(description="No such snapshot."),
        },
        examples=[
            OpenApiExample("published", value=_EXAMPLE, response_only=True),
            OpenApiExample("rejected", value=_REJECTED, response_only=True),
        ],
    )
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        """One snapshot: status, progress, errors (if rejected) and its trees."""
        return super().retrieve(request, *args, **kwargs)
