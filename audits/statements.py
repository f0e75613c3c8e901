"""Custodian statements: store the raw upload first, then verify, parse, validate and apply.

Nothing sent is lost: the bytes are committed before any check runs, and a rejected upload
keeps its bytes and its error report. Nothing is half-applied: lines, status and supersession
change in one transaction, and only while the statement is still ``received``, so an upload
interrupted mid-check (a killed worker, a restart) is finished later by
``resume_statement`` (run by a periodic task, or an admin) exactly once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audits.choices import SignatureStatus, StatementSource, StatementStatus
from audits.core import custodian_signatures as sigs
from audits.core.statement_formats import (
    MAX_ERRORS,
    LineError,
    ParsedStatement,
    StatementRejected,
    decimal_places,
    parse_statement,
)
from audits.models import (
    Asset,
    Custodian,
    CustodianKey,
    CustodianStatement,
    RawDocument,
    StatementLine,
)
from audits.permissions import is_admin

logger = logging.getLogger(__name__)


class UploadTooLarge(Exception):
    """The upload exceeds MAX_UPLOAD_BYTES; it is refused before being stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the file is {size} bytes; the limit is {limit} bytes")
        self.size, self.limit = size, limit


@dataclass(frozen=True)
class Submission:
    statement: CustodianStatement
    created: bool


def submit_statement(
    *,
    custodian: Custodian,
    user,
    raw: bytes,
    fmt: str,
    as_of: datetime | None = None,
    signature_header: str | None = None,
) -> Submission:
    """Store an upload and process it; the same bytes again return the existing statement."""
    limit = settings.MAX_UPLOAD_BYTES
    if len(raw) > limit:
        raise UploadTooLarge(len(raw), limit)
    digest = hashlib.sha256(raw).hexdigest()
    existing = _existing(custodian, digest)
    if existing is not None:
        return Submission(existing, created=False)
    source = StatementSource.ADMIN_ENTERED if is_admin(user) else StatementSource.CUSTODIAN_UPLOADED
    try:
        with transaction.atomic():
            document = RawDocument.objects.filter(sha256=digest).first()
            if document is None:
                document = RawDocument.objects.create(sha256=digest, content=raw, size=len(raw))
            statement = CustodianStatement.objects.create(
                custodian=custodian,
                uploaded_by=user,
                format=fmt,
                raw=document,
                as_of=as_of,
                source=source,
                status=StatementStatus.RECEIVED,
                signature_header=signature_header or "",
            )
    except IntegrityError:
        # The same bytes arrived twice at once: the other request stored them first.
        existing = _existing(custodian, digest)
        if existing is None:
            raise
        return Submission(existing, created=False)
    logger.info(
        "statement received",
        extra={"statement": statement.pk, "custodian": custodian.pk, "bytes": len(raw)},
    )
    process_statement(statement, raw, signature_header)
    return Submission(statement, created=True)


def _existing(custodian: Custodian, digest: str) -> CustodianStatement | None:
    return CustodianStatement.objects.filter(custodian=custodian, raw__sha256=digest).first()


def process_statement(
    statement: CustodianStatement, raw: bytes, signature_header: str | None
) -> bool:
    """Verify, parse and validate a stored upload, then accept or reject it atomically.

    Returns False, changing nothing, if the statement was no longer ``received`` when the
    outcome was to be written (another process finished it first).
    """
    errors: list[LineError] = []
    errors += _check_signature(statement, raw, signature_header)
    parsed: ParsedStatement | None = None
    try:
        parsed = parse_statement(statement.format, raw, statement.as_of)
    except StatementRejected as exc:
        errors += exc.errors
    assets: dict[str, Asset] = {}
    if parsed is not None:
        assets = {a.isin: a for a in Asset.objects.all()}
        errors += _check_against_registry(parsed, assets)
    if errors:
        return _reject(statement, errors)
    assert parsed is not None
    return _accept(statement, parsed, assets)


# An upload is processed in the request that sent it, in seconds; one still `received` after
# this long was interrupted.
STALLED_AFTER = timedelta(minutes=10)


def stalled_statements(now: datetime | None = None) -> list[int]:
    """Ids of statements still `received` longer than STALLED_AFTER, oldest first."""
    cutoff = (now or timezone.now()) - STALLED_AFTER
    return list(
        CustodianStatement.objects.filter(status=StatementStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    )


def resume_statement(statement_id: int) -> CustodianStatement:
    """Finish checking a statement left `received`, from its stored bytes and signature header.

    Safe to repeat and to run beside another attempt: a statement already accepted or rejected
    is returned unchanged.
    """
    statement = CustodianStatement.objects.select_related("raw", "custodian").get(pk=statement_id)
    if statement.status == StatementStatus.RECEIVED:
        logger.info("statement resumed", extra={"statement": statement.pk})
        process_statement(
            statement, bytes(statement.raw.content), statement.signature_header or None
        )
        statement.refresh_from_db()
    return statement


def _claim_outcome(statement: CustodianStatement) -> bool:
    """Inside the outcome's transaction: True if the statement is still ours to decide.

    A conditional UPDATE, not a read: it takes the row's write lock, so of two processes
    finishing the same upload the second waits, then finds it decided and writes nothing.
    """
    return (
        CustodianStatement.objects.filter(pk=statement.pk, status=StatementStatus.RECEIVED).update(
            status=StatementStatus.RECEIVED
        )
        == 1
    )


def _check_signature(
    statement: CustodianStatement, raw: bytes, header: str | None
) -> list[LineError]:
    """Record the signature outcome on `statement`; return the errors it causes."""
    field = sigs.SIGNATURE_HEADER
    if not header:
        statement.signature_status = SignatureStatus.NONE
        if statement.custodian.signatures_required:
            return [
                LineError(
                    None,
                    field,
                    f"{field}: this custodian requires signed statements and the upload "
                    "carries no signature.",
                )
            ]
        return []
    try:
        key_id, signature = sigs.parse_signature_header(header)
    except sigs.InvalidSignatureHeader as exc:
        statement.signature_status = SignatureStatus.MALFORMED
        return [LineError(None, field, f"{field}: {exc}.")]
    statement.signature = signature
    key = CustodianKey.objects.filter(
        custodian=statement.custodian, key_id=key_id, revoked_at__isnull=True
    ).first()
    if key is None:
        statement.signature_status = SignatureStatus.UNKNOWN_KEY
        return [
            LineError(
                None, field, f"{field}: key {key_id} is not a registered, unrevoked key of yours."
            )
        ]
    statement.signature_key = key
    if not sigs.verify_detached(bytes(key.public_key), signature, raw):
        statement.signature_status = SignatureStatus.INVALID
        return [
            LineError(
                None,
                field,
                f"{field}: the signature by key {key_id} does not match the uploaded bytes.",
            )
        ]
    statement.signature_status = SignatureStatus.VALID
    statement.source = StatementSource.CUSTODIAN_SIGNED
    return []


def _check_against_registry(parsed: ParsedStatement, assets: dict[str, Asset]) -> list[LineError]:
    """Checks that need the database: known ISINs, allowed decimals, a past as-of."""
    errors: list[LineError] = []
    if parsed.as_of is None:
        errors.append(LineError(None, "as_of", "as_of: give the statement's as-of date and time."))
    elif parsed.as_of > timezone.now():
        errors.append(
            LineError(None, "as_of", f"as_of: {parsed.as_of.isoformat()} is in the future.")
        )
    for line in parsed.lines:
        if len(errors) >= MAX_ERRORS:
            break
        asset = assets.get(line.isin)
        if asset is None:
            errors.append(
                LineError(
                    line.line_no,
                    "isin",
                    f"line {line.line_no}, field isin: {line.isin} is not the ISIN of any "
                    "registered asset.",
                )
            )
        elif (
            # Raw exponent first: normalising every quantity costs more than the whole check.
            -int(line.quantity.as_tuple().exponent) > asset.quantity_decimals
            and decimal_places(line.quantity) > asset.quantity_decimals
        ):
            errors.append(
                LineError(
                    line.line_no,
                    "quantity",
                    f"line {line.line_no}, field quantity: {line.quantity} has "
                    f"{decimal_places(line.quantity)} decimal places; {asset.code} allows "
                    f"{asset.quantity_decimals}.",
                )
            )
    return errors


def _reject(statement: CustodianStatement, errors: Iterable[LineError]) -> bool:
    report = [e.as_dict() for e in errors]
    with transaction.atomic():
        if not _claim_outcome(statement):
            return False
        statement.status = StatementStatus.REJECTED
        statement.rejection_report = report
        statement.save()
    logger.info("statement rejected", extra={"statement": statement.pk, "errors": len(report)})
    return True


def _accept(
    statement: CustodianStatement, parsed: ParsedStatement, assets: dict[str, Asset]
) -> bool:
    with transaction.atomic():
        if not _claim_outcome(statement):
            return False
        CustodianStatement.objects.filter(
            custodian=statement.custodian, as_of=parsed.as_of, status=StatementStatus.ACCEPTED
        ).exclude(pk=statement.pk).update(
            status=StatementStatus.SUPERSEDED, superseded_by=statement
        )
        _insert_lines(statement, parsed, assets)
        statement.as_of = parsed.as_of
        statement.line_count = len(parsed.lines)
        statement.status = StatementStatus.ACCEPTED
        statement.save()
    logger.info("statement accepted", extra={"statement": statement.pk, "lines": len(parsed.lines)})
    return True


def _insert_lines(
    statement: CustodianStatement, parsed: ParsedStatement, assets: dict[str, Asset]
) -> None:
    rows = [
        (statement.pk, ln.line_no, ln.isin, assets[ln.isin].pk, ln.quantity, ln.account,
         ln.balance_type)
        for ln in parsed.lines
    ]  # fmt: skip
    columns = ["statement_id", "line_no", "isin", "asset_id", "quantity", "account", "balance_type"]
    if connection.vendor == "postgresql":
        # COPY is several times faster than INSERT for a 100k-line statement.
        sql = f"COPY {StatementLine._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        return
    StatementLine.objects.bulk_create(
        (StatementLine(**dict(zip(columns, row, strict=True))) for row in rows),
        batch_size=2000,
    )


_RAW_TYPES = {"csv": ("text/csv", "csv"), "json": ("application/json", "json"),
              "semt002": ("application/xml", "xml")}  # fmt: skip


@dataclass(frozen=True)
class RawFile:
    content: bytes
    content_type: str
    filename: str
    sha256: str


def raw_file(statement: CustodianStatement) -> RawFile:
    """The uploaded bytes with a content type and a download name that carries the hash."""
    content_type, ext = _RAW_TYPES[statement.format]
    digest = statement.raw.sha256
    return RawFile(
        bytes(statement.raw.content),
        content_type,
        f"statement-{statement.pk}-{digest[:12]}.{ext}",
        digest,
    )


def holdings_summary(statement: CustodianStatement) -> list[dict]:
    """Per asset and balance type: the total quantity and how many lines it came from."""
    from django.db.models import Count, Sum

    return list(
        statement.lines.values("asset__code", "balance_type")
        .annotate(quantity=Sum("quantity"), lines=Count("id"))
        .order_by("asset__code", "balance_type")
    )


def reject_statement(statement: CustodianStatement, by, reason: str) -> None:
    """An admin rejects a statement by hand; its lines stop counting, its evidence stays."""
    if not reason.strip():
        raise ValueError("give a reason")
    with transaction.atomic():
        locked = CustodianStatement.objects.select_for_update().get(pk=statement.pk)
        locked.status = StatementStatus.REJECTED
        locked.rejected_by = by
        locked.rejection_report = [
            *locked.rejection_report,
            {"line": None, "field": None, "message": f"Rejected by {by}: {reason.strip()}"},
        ]
        locked.save()
    statement.refresh_from_db()
