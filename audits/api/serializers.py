from rest_framework import serializers

from audits.models import Asset, Chain, Custodian, TokenDeployment
from audits.permissions import is_admin


class AssetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Asset
        fields = ["id", "code", "name", "isin", "kind", "decimals", "shares_per_token", "active"]


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
