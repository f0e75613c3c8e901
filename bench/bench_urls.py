"""The site's URLs plus a bare JsonResponse view: the floor the proof endpoint is measured
against (bench/proof_endpoint_bench.py). Never used by the service."""

from django.http import JsonResponse
from django.urls import path

from porapp.urls import urlpatterns as site


def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), *site]
