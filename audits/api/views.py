"""Reference-data endpoints: public to read, admins to write."""

from rest_framework import viewsets

from audits import collateral
from audits.api import serializers
from audits.models import Asset, Chain, Custodian, TokenDeployment
from audits.permissions import IsAdminOrReadOnly


class AssetViewSet(viewsets.ModelViewSet):
    # The collateral field reads the eligibility row and latest reconciliation: joined here.
    queryset = collateral.with_collateral(Asset.objects.all())
    serializer_class = serializers.AssetSerializer
    permission_classes = [IsAdminOrReadOnly]
    lookup_field = "code"


class CustodianViewSet(viewsets.ModelViewSet):
    queryset = Custodian.objects.all()
    serializer_class = serializers.CustodianSerializer
    permission_classes = [IsAdminOrReadOnly]


class ChainViewSet(viewsets.ModelViewSet):
    queryset = Chain.objects.all()
    serializer_class = serializers.ChainSerializer
    permission_classes = [IsAdminOrReadOnly]
    lookup_field = "chain_id"


class TokenDeploymentViewSet(viewsets.ModelViewSet):
    queryset = TokenDeployment.objects.select_related("asset", "chain")
    serializer_class = serializers.TokenDeploymentSerializer
    permission_classes = [IsAdminOrReadOnly]
