from rest_framework.routers import DefaultRouter

from audits.api import views

router = DefaultRouter()
router.register("assets", views.AssetViewSet)
router.register("custodians", views.CustodianViewSet)
router.register("chains", views.ChainViewSet)
router.register("deployments", views.TokenDeploymentViewSet)

urlpatterns = router.urls
