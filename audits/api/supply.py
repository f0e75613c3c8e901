"""Supply readings over the API: public evidence, read-only. Failed reads show as errors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from audits import supply
from audits.choices import ReadingStatus, SupplySource
from audits.core.evm import to_tokens
from audits.models import Asset, SupplyReading
from audits.permissions import IsAdminOrReadOnly


@extend_schema_field(OpenApiTypes.STR)
class TokenAmountField(serializers.Field):
    """An exact amount as a decimal string (JSON numbers would lose digits); null when failed."""

    def __init__(self, raw_attr: str, *, whole_tokens: bool, **kwargs: Any) -> None:
        self.raw_attr = raw_attr
        self.whole_tokens = whole_tokens
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(source="*", **kwargs)

    def to_representation(self, reading: SupplyReading) -> str | None:
        raw = getattr(reading, self.raw_attr)
        if raw is None or reading.decimals is None:
            return None
        if not self.whole_tokens:
            return str(int(raw))
        # Derived from the raw amount so it has exactly the token's decimals on every database.
        return str(to_tokens(int(raw), reading.decimals))


class SupplyReadingSerializer(serializers.ModelSerializer):
    asset = serializers.CharField(source="deployment.asset.code")
    chain_id = serializers.IntegerField(source="deployment.chain.chain_id")
    chain = serializers.CharField(source="deployment.chain.name")
    token = serializers.CharField(source="deployment.address")
    source_label = serializers.CharField(source="get_source_display")
    total_supply_raw = TokenAmountField("total_supply_raw", whole_tokens=False)
    total_supply = TokenAmountField("total_supply_raw", whole_tokens=True)
    excluded_raw = TokenAmountField("excluded_raw", whole_tokens=False)
    circulating_raw = TokenAmountField("circulating_raw", whole_tokens=False)
    circulating = TokenAmountField("circulating_raw", whole_tokens=True)
    excluded_balances = serializers.DictField(child=serializers.CharField())

    class Meta:
        model = SupplyReading
        fields = [
            "id", "asset", "chain_id", "chain", "token", "source", "source_label", "status",
            "block_number", "block_hash", "block_timestamp", "as_of", "decimals",
            "total_supply_raw", "total_supply", "excluded_balances", "excluded_raw",
            "circulating_raw", "circulating", "rpc", "error", "retryable", "attempts",
            "attempted_at", "last_confirmed_at", "confirmations", "orphaned_at", "canonical_hash",
            "reference",
        ]  # fmt: skip
        extra_kwargs = {
            "attempted_at": {"help_text": "When the reading was taken (failed: latest attempt)."},
            "last_confirmed_at": {
                "help_text": "When the figure was last confirmed: the last read that pinned "
                "this same block, or a manual reading's as-of date. Null when failed."
            },
            "orphaned_at": {
                "help_text": "Set when the block was reorganised away; such a reading never counts."
            },
        }
        read_only_fields = fields


_FILTERS = [
    OpenApiParameter("asset", str, description="Asset code, e.g. AAPLx."),
    OpenApiParameter("chain_id", int, description="EIP-155 chain id."),
    OpenApiParameter("status", str, enum=ReadingStatus.values),
    OpenApiParameter("source", str, enum=SupplySource.values),
]


@extend_schema(tags=["supply"], parameters=_FILTERS)
class SupplyReadingViewSet(viewsets.ReadOnlyModelViewSet):
    """Every supply reading, newest first. A failed reading has an error and no amounts."""

    serializer_class = SupplyReadingSerializer
    permission_classes = [IsAdminOrReadOnly]
    queryset = SupplyReading.objects.select_related("deployment__asset", "deployment__chain")

    def get_queryset(self):
        qs = super().get_queryset()
        params = self.request.query_params
        if code := params.get("asset"):
            qs = qs.filter(deployment__asset__code=code)
        if chain_id := params.get("chain_id"):
            if not chain_id.isdigit():
                raise ValidationError({"chain_id": "Must be an integer chain id."})
            qs = qs.filter(deployment__chain__chain_id=int(chain_id))
        for name, choices in (("status", ReadingStatus), ("source", SupplySource)):
            if value := params.get(name):
                if value not in choices.values:
                    raise ValidationError({name: f"Must be one of {', '.join(choices.values)}."})
                qs = qs.filter(**{name: value})
        return qs


class DeploymentSupplySerializer(serializers.Serializer):
    chain_id = serializers.IntegerField(source="deployment.chain.chain_id")
    chain = serializers.CharField(source="deployment.chain.name")
    token = serializers.CharField(source="deployment.address")
    decimals = serializers.IntegerField(source="deployment.decimals")
    state = serializers.ChoiceField(
        choices=["ok", "stale", "failed", "missing"],
        help_text="ok: counted in the total; otherwise the asset has no total.",
    )
    counted = serializers.BooleanField()
    note = serializers.CharField()
    reading = SupplyReadingSerializer(allow_null=True)
    latest_error = SupplyReadingSerializer(allow_null=True)


class AssetSupplySerializer(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    circulating = serializers.DecimalField(
        max_digits=None,
        decimal_places=None,
        coerce_to_string=True,
        allow_null=True,
        help_text="Sum over all chains in whole tokens; null unless every chain is counted.",
    )
    total_supply = serializers.DecimalField(
        max_digits=None, decimal_places=None, coerce_to_string=True, allow_null=True
    )
    complete = serializers.SerializerMethodField()
    reason = serializers.CharField(help_text="Why there is no total, when there is none.")
    includes_manual = serializers.BooleanField(
        help_text="True when an issuer-reported (manual) figure is part of the total."
    )
    deployments = DeploymentSupplySerializer(many=True)

    def get_complete(self, obj: supply.AssetSupply) -> bool:
        return obj.circulating is not None


@extend_schema(tags=["supply"])
class AssetSupplyView(generics.GenericAPIView):
    """An asset's latest supply on each chain, and the total when every chain is current."""

    serializer_class = AssetSupplySerializer
    permission_classes = [IsAdminOrReadOnly]
    queryset = Asset.objects.all()
    lookup_field = "code"
    pagination_class = None

    def get(self, request: Request, code: str) -> Response:
        asset = self.get_object()
        return Response(self.get_serializer(supply.asset_supply(asset)).data)
