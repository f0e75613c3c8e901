"""The site's URLs plus one view that fails, to read the policy on a real 500 response."""

from django.urls import path

from porapp.urls import urlpatterns as site


def boom(request):
    raise RuntimeError("a failure for the 500 page")


urlpatterns = [*site, path("boom/", boom)]
