from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audits import views

# Swagger UI's stylesheet draws its icons (expand arrows, lock, copy) as data: SVG images. Only
# this page may load data: images, and only images: its scripts and styles stay 'self'.
api_docs = csp_update({"img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="schema")
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("portal/", include("audits.portal.urls")),
    path("attestations/", include("audits.public.urls")),
    path("proofs/", include("audits.public.proof_urls")),
    path("api/v1/", include("audits.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as its own response (?script=), so the
    # page needs no inline script. ReDoc is not offered: its bundle injects <style> elements,
    # which a style-src without 'unsafe-inline' refuses (docs/public-pages.md).
    path("api/docs/", api_docs, name="api-docs"),
]
