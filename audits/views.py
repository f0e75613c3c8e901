from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audits.health import run_checks


@never_cache
@require_GET
def healthz(request):
    """200 when the database and broker answer, else 503 naming what failed."""
    checks = run_checks()
    ok = all(c.ok for c in checks)
    body = {
        "status": "ok" if ok else "fail",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    if not ok:
        body["failed"] = [c.name for c in checks if not c.ok]
    return JsonResponse(body, status=200 if ok else 503)


def home(request):
    """Landing page: each asset's backing and eligibility in plain words, and where to go next."""
    from django.shortcuts import render

    from audits.collateral import home_cards

    return render(request, "home.html", {"cards": home_cards()})


@require_GET
def jwks(request):
    """The public keys that sign attestations, with their validity windows (RFC 7517 JWKS)."""
    from audits.attestation_keys import jwks as published

    response = JsonResponse(published())
    response["Cache-Control"] = "public, max-age=300"
    return response
