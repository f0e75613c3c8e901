"""Public attestation pages. Thin: the figures shown come from the signed payload itself
(`attestations.statement_of`), so the page says exactly what was signed; the downloads are
the stored bytes, unchanged."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from audits import attestations
from audits.models import Attestation
from audits.public.readable import predicate_for_people

PAGE_SIZE = 50
# Attestations never change once issued (append-only), so their downloads can be cached for
# good; the pages that list them cannot.
IMMUTABLE = "public, max-age=31536000, immutable"


def _attestation(sequence: int) -> Attestation:
    return get_object_or_404(Attestation.objects.select_related("key"), sequence=sequence)


@require_GET
def attestation_list(request):
    listed = Attestation.objects.select_related("key").defer("payload", "envelope")
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "public/attestation_list.html", {"page": page})


@require_GET
def attestation_latest(request):
    newest = attestations.latest()
    if newest is None:
        return redirect("public:attestations")
    return redirect("public:attestation", sequence=newest.sequence)


@require_GET
def attestation_detail(request, sequence: int):
    attestation = _attestation(sequence)
    statement = attestations.statement_of(attestation)
    following = (
        Attestation.objects.filter(sequence=sequence + 1).values_list("sequence", flat=True).first()
    )
    return render(
        request,
        "public/attestation_detail.html",
        {
            "attestation": attestation,
            "statement": statement,
            "predicate": statement["predicate"],
            "shown": predicate_for_people(statement["predicate"]),
            "next_sequence": following,
        },
    )


def _download(body: bytes | str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = IMMUTABLE
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def attestation_envelope(request, sequence: int):
    """The DSSE envelope exactly as published."""
    attestation = _attestation(sequence)
    return _download(
        attestation.envelope, "application/json", f"porapp-attestation-{sequence}.dsse.json"
    )


@require_GET
def attestation_payload(request, sequence: int):
    """The signed payload bytes (canonical JSON of the in-toto Statement)."""
    attestation = _attestation(sequence)
    return _download(
        bytes(attestation.payload),
        "application/vnd.in-toto+json",
        f"porapp-attestation-{sequence}.payload.json",
    )


@require_GET
def attestation_latest_envelope(request):
    """The newest envelope, for the proof page; it changes with every attestation."""
    newest = attestations.latest()
    if newest is None:
        raise Http404("no attestation has been issued yet")
    response = _download(
        newest.envelope, "application/json", f"porapp-attestation-{newest.sequence}.dsse.json"
    )
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def proof_verify(request):
    """Check a proof bundle the user holds, in their browser; nothing is sent here."""
    return render(request, "public/proof_verify.html")


@require_GET
def verify_file(request):
    """Check an envelope the reader holds, in their browser; nothing is sent here."""
    return render(request, "public/verify.html")
