from django.urls import path
from rest_framework.routers import DefaultRouter

from audits.api import collateral, liabilities, proofs, statements, supply, views

router = DefaultRouter()
router.register("assets", views.AssetViewSet)
router.register("custodians", views.CustodianViewSet)
router.register("chains", views.ChainViewSet)
router.register("deployments", views.TokenDeploymentViewSet)
router.register("statements", statements.StatementViewSet, basename="statement")
router.register("snapshots", liabilities.LiabilitySnapshotViewSet, basename="liability-snapshot")
router.register("supply-readings", supply.SupplyReadingViewSet, basename="supply-reading")

urlpatterns = [
    *router.urls,
    path(
        "collateral/eligibility",
        collateral.EligibilityFeedView.as_view(),
        name="collateral-eligibility",
    ),
    path("collateral/events", collateral.EligibilityEventsView.as_view(), name="collateral-events"),
    path(
        "snapshots/<int:id>/proofs/<str:account_hash>",
        proofs.AccountProofsView.as_view(),
        name="snapshot-proofs",
    ),
    # path: an account id may hold a slash.
    path(
        "snapshots/<int:id>/bundles/<path:account_id>",
        proofs.AccountBundleView.as_view(),
        name="snapshot-bundle",
    ),
    path("assets/<str:code>/supply/", supply.AssetSupplyView.as_view(), name="asset-supply"),
]
