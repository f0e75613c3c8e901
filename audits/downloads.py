from django.http import HttpResponse

from audits.statements import RawFile


def raw_download(raw: RawFile) -> HttpResponse:
    """An attachment response for evidence bytes, with their SHA-256 in a header."""
    response = HttpResponse(raw.content, content_type=raw.content_type)
    response["Content-Disposition"] = f'attachment; filename="{raw.filename}"'
    response["X-Content-SHA256"] = raw.sha256
    response["X-Content-Type-Options"] = "nosniff"
    return response
