from rest_framework.routers import DefaultRouter

from audits.api import statements, views

router = DefaultRouter()
router.register("assets", views.AssetViewSet)
router.register("custodians", views.CustodianViewSet)
router.register("chains", views.ChainViewSet)
router.register("deployments", views.TokenDeploymentViewSet)
router.register("statements", statements.StatementViewSet, basename="statement")

urlpatterns = router.urls
