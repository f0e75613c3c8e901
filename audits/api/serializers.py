from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audits import collateral
from audits.api.collateral import CollateralSerializer
from audits.models import Asset, Chain, Custodian, TokenDeployment
from audits.permissions import is_admin


class AssetSerializer(serializers.ModelSerializer):
    collateral = serializers.SerializerMethodField(
        help_text="Eligibility as collateral and the latest reconciliation (read-only)."
    )

    class Meta:
        model = Asset
        fields = [
            "id", "code", "name", "isin", "kind", "decimals", "shares_per_token", "active",
            "collateral",
        ]  # fmt: skip

    @extend_schema_field(CollateralSerializer)
    def get_collateral(self, asset: Asset) -> dict:
        return CollateralSerializer(collateral.collateral_of(asset)).data


class CustodianSerializer(serializers.ModelSerializer):
    class Meta:
        model = Custodian
        fields = ["id", "name", "lei", "contact", "active"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        # Contacts are operational data for admins, not for the public.
        if request is None or not is_admin(request.user):
            data.pop("contact", None)
        return data


class ChainSerializer(serializers.ModelSerializer):
    class Meta:
        model = Chain
        fields = ["id", "chain_id", "name", "active"]


class TokenDeploymentSerializer(serializers.ModelSerializer):
    asset = serializers.SlugRelatedField(slug_field="code", queryset=Asset.objects.all())
    chain = serializers.SlugRelatedField(slug_field="chain_id", queryset=Chain.objects.all())

    class Meta:
        model = TokenDeployment
        fields = ["id", "asset", "chain", "address", "decimals", "active"]
