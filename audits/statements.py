"""Custodian statements: store the raw upload first, then verify, parse, validate and apply.

Nothing sent is lost: the bytes are committed before any check runs, and a rejected upload
keeps its bytes and its error report. Nothing is half-applied: lines, status and supersession
change in one transaction, and only while the statement is still ``received``, so an upload
interrupted mid-check (a killed worker, a restart) is finished later by
``resume_statement`` (run by a periodic task, or an admin) exactly once.

Nothing is stuck either: an unexpected error while checking is recorded on the statement and
counted; after ``STATEMENT_MAX_CHECK_ATTEMPTS`` attempts the statement is ``failed`` (final until
an admin retries it), so a poison upload cannot be picked up for ever.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal, Inexact, InvalidOperation

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
    IdempotencyKey,
    RawDocument,
    StatementLine,
)
from audits.permissions import is_admin
from audits.triggers import request_runs

logger = logging.getLogger(__name__)


class UploadTooLarge(Exception):
    """The upload exceeds MAX_UPLOAD_BYTES; it is refused before being stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the file is {size} bytes; the limit is {limit} bytes")
        self.size, self.limit = size, limit


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used before for a different request; nothing was stored."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different upload (another file, "
            "format, as-of, signature or custodian); use a new key for a new upload."
        )


@dataclass(frozen=True)
class Submission:
    """What an upload led to.

    `statement` is what to show: the statement itself or, for a page of a multi-page
    statement, the statement it joins. `upload` is the row holding these bytes. `created`: this
    call stored them; otherwise they repeat an earlier upload (or the Idempotency-Key was seen
    before: `replayed`). `requeued`: the earlier upload was still `received` and its
    processing was queued again.
    """

    statement: CustodianStatement
    created: bool
    upload: CustodianStatement | None = None
    requeued: bool = False
    replayed: bool = False


# An earlier upload with the same bytes, format, as-of and signature header is a repeat only
# while it stands (or may still): after a rejection, a supersession or a failure, sending it
# again is a new attempt.
_REPEATABLE = (StatementStatus.RECEIVED, StatementStatus.INCOMPLETE, StatementStatus.ACCEPTED)


def submit_statement(
    *,
    custodian: Custodian,
    user,
    raw: bytes,
    fmt: str,
    as_of: datetime | None = None,
    signature_header: str | None = None,
    idempotency_key: str | None = None,
) -> Submission:
    """Store an upload and process it, unless it repeats an earlier one (then return that).

    A repeat is the same bytes with the same format, as-of and signature header as an earlier
    upload that is still received, incomplete or accepted; if still `received`, its processing
    is queued again. After a rejection the same upload is a new attempt, linked (`retry_of`)
    to the rejected statement. With `idempotency_key`, a request repeating an earlier one with
    that key returns what that one stored; the key with a different request raises
    IdempotencyKeyReused.
    """
    limit = settings.MAX_UPLOAD_BYTES
    if len(raw) > limit:
        raise UploadTooLarge(len(raw), limit)
    digest = hashlib.sha256(raw).hexdigest()
    header = signature_header or ""
    source = StatementSource.ADMIN_ENTERED if is_admin(user) else StatementSource.CUSTODIAN_UPLOADED
    fingerprint = _fingerprint(custodian, fmt, as_of, header, digest)
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                # One upload of a custodian at a time decides repeat or new: two identical
                # uploads at once must not both be stored, nor two pages both miss each other.
                _lock_custodian(custodian)
                if idempotency_key:
                    replay = _replay(user, idempotency_key, fingerprint)
                    if replay is not None:
                        return replay
                earlier = _repeat_of(custodian, digest, fmt, as_of, header)
                if earlier is not None:
                    target = earlier.part_of or earlier
                    requeued = _requeue_if_received(target)
                    _remember_key(user, idempotency_key, fingerprint, earlier, created=False)
                    return Submission(target, created=False, upload=earlier, requeued=requeued)
                document, _ = RawDocument.objects.get_or_create(
                    sha256=digest, defaults={"content": raw, "size": len(raw)}
                )
                statement = CustodianStatement.objects.create(
                    custodian=custodian,
                    uploaded_by=user,
                    format=fmt,
                    raw=document,
                    as_of=as_of,
                    declared_as_of=as_of,
                    source=source,
                    status=StatementStatus.RECEIVED,
                    signature_header=header,
                    retry_of=_rejected_before(custodian, digest),
                )
                _remember_key(user, idempotency_key, fingerprint, statement, created=True)
            break
        except IntegrityError:
            # Another request took this Idempotency-Key first; the next pass replays it.
            if attempt == 2 or not idempotency_key:
                raise
    logger.info(
        "statement received",
        extra={"statement": statement.pk, "custodian": custodian.pk, "bytes": len(raw)},
    )
    process_statement(statement, raw, signature_header)
    statement.refresh_from_db()
    return Submission(statement.part_of or statement, created=True, upload=statement)


def _lock_custodian(custodian: Custodian) -> None:
    list(Custodian.objects.select_for_update().filter(pk=custodian.pk).values_list("pk"))


def _repeat_of(
    custodian: Custodian, digest: str, fmt: str, as_of: datetime | None, header: str
) -> CustodianStatement | None:
    """The latest upload these bytes and parameters repeat, if it still stands."""
    latest = (
        CustodianStatement.objects.filter(
            custodian=custodian,
            raw__sha256=digest,
            format=fmt,
            declared_as_of=as_of,
            signature_header=header,
        )
        .select_related("part_of")
        .order_by("-pk")
        .first()
    )
    if latest is None or (latest.part_of or latest).status not in _REPEATABLE:
        return None
    return latest


def _rejected_before(custodian: Custodian, digest: str) -> CustodianStatement | None:
    """The rejected statement an upload of these bytes retries, if the last one was rejected."""
    latest = (
        CustodianStatement.objects.filter(custodian=custodian, raw__sha256=digest)
        .select_related("part_of")
        .order_by("-pk")
        .first()
    )
    if latest is None:
        return None
    target = latest.part_of or latest
    return target if target.status == StatementStatus.REJECTED else None


def _requeue_if_received(statement: CustodianStatement) -> bool:
    """Queue the processing of a statement still `received` again, once this transaction commits.

    Its first processing may have died with its process; a second one changes nothing if the
    first finishes after all (the outcome is written only while still `received`).
    """
    if statement.status != StatementStatus.RECEIVED:
        return False
    statement_id = statement.pk
    # By name: services sit below the tasks module.
    transaction.on_commit(
        lambda: current_app.send_task("audits.tasks.resume_statement", args=[statement_id])
    )
    logger.info("statement requeued", extra={"statement": statement_id})
    return True


def _fingerprint(
    custodian: Custodian, fmt: str, as_of: datetime | None, header: str, digest: str
) -> str:
    request = [custodian.pk, fmt, as_of.isoformat() if as_of else None, header, digest]
    return hashlib.sha256(json.dumps(request).encode()).hexdigest()


def _replay(user, key: str, fingerprint: str) -> Submission | None:
    """What an earlier request with this Idempotency-Key led to, or None if the key is new."""
    IdempotencyKey.objects.filter(user=user, expires_at__lte=timezone.now()).delete()
    remembered = (
        IdempotencyKey.objects.filter(user=user, key=key)
        .select_related("statement__part_of")
        .first()
    )
    if remembered is None:
        return None
    if remembered.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    upload = remembered.statement
    target = upload.part_of or upload
    requeued = _requeue_if_received(target)
    return Submission(
        target, created=remembered.created, upload=upload, requeued=requeued, replayed=True
    )


def _remember_key(
    user, key: str | None, fingerprint: str, statement: CustodianStatement, *, created: bool
) -> None:
    if not key:
        return
    IdempotencyKey.objects.create(
        user=user,
        key=key,
        fingerprint=fingerprint,
        statement=statement,
        created=created,
        expires_at=timezone.now() + settings.IDEMPOTENCY_KEY_TTL,
    )


def process_statement(
    statement: CustodianStatement, raw: bytes, signature_header: str | None
) -> bool:
    """Verify, parse and validate a stored upload, then accept or reject it atomically.

    Any other failure while doing so (a bug, a parser's RecursionError, a database error) is
    recorded on the statement instead of propagating: it stays ``received`` to be retried by
    ``resume_stalled_statements``, or becomes ``failed`` once it has had its attempts.

    Returns False, changing nothing, if the statement was no longer ``received`` when the
    outcome was to be written (another process finished it first).
    """
    return _attempt(statement, lambda: _check_and_decide(statement, raw, signature_header))


def assemble_statement(statement: CustodianStatement) -> bool:
    """Check a statement whose pages have all arrived, as one attempt (see process_statement)."""
    return _attempt(statement, lambda: _assemble(statement))


def _attempt(statement: CustodianStatement, check: Callable[[], bool]) -> bool:
    """Run one counted checking attempt; an unexpected error is recorded, never left stuck."""
    if not _count_attempt(statement):
        return False
    try:
        return check()
    except Exception as exc:  # whatever went wrong is recorded, never left stuck
        return _record_failure(statement, exc)


def _check_and_decide(
    statement: CustodianStatement, raw: bytes, signature_header: str | None
) -> bool:
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
        paged = parsed.pagination is not None and not parsed.pagination.single
        if paged and parsed.pagination and not parsed.pagination.statement_id:
            errors.append(
                LineError(
                    None,
                    "StmtGnlDtls/StmtId",
                    "StmtGnlDtls/StmtId: a page of a statement sent as several messages needs "
                    "the statement id that joins its pages.",
                )
            )
    if errors:
        return _reject(statement, errors)
    assert parsed is not None
    if parsed.pagination is not None and not parsed.pagination.single:
        return _attach_page(statement, parsed)
    return _accept(statement, parsed, assets)


def _count_attempt(statement: CustodianStatement) -> bool:
    """Count one checking attempt, committed before it starts; False if no longer received.

    Committed first so that an attempt that never returns (the process killed, out of memory)
    still counts towards the limit.
    """
    counted = CustodianStatement.objects.filter(
        pk=statement.pk, status=StatementStatus.RECEIVED
    ).update(check_attempts=F("check_attempts") + 1)
    if counted:
        statement.check_attempts = CustodianStatement.objects.values_list(
            "check_attempts", flat=True
        ).get(pk=statement.pk)
    return counted == 1


# Long enough for any exception message worth reading; the whole report stays small.
_ERROR_CHARS = 500


def _record_failure(statement: CustodianStatement, exc: BaseException) -> bool:
    """Record an unexpected error; the statement becomes `failed` after its last attempt."""
    message = " ".join(str(exc).split())[:_ERROR_CHARS]
    error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    limit = settings.STATEMENT_MAX_CHECK_ATTEMPTS
    final = statement.check_attempts >= limit
    # The traceback says where; the statement's bytes (the custodian's data) are not logged.
    logger.error(
        "statement check failed",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"statement": statement.pk, "attempt": statement.check_attempts, "final": final},
    )
    with transaction.atomic():
        recorded = CustodianStatement.objects.filter(
            pk=statement.pk, status=StatementStatus.RECEIVED
        ).update(
            check_error=error,
            status=StatementStatus.FAILED if final else StatementStatus.RECEIVED,
        )
    # Forget what the interrupted check set in memory (signature outcome, source).
    statement.refresh_from_db()
    return recorded == 1


# An upload is processed in the request that sent it, in seconds; one still `received` after
# this long was interrupted.
STALLED_AFTER = timedelta(minutes=10)


def stalled_statements(now: datetime | None = None) -> list[int]:
    """Ids of statements still `received` longer than STALLED_AFTER, oldest first.

    `failed` statements are not among them: they have had their attempts.
    """
    cutoff = (now or timezone.now()) - STALLED_AFTER
    return list(
        CustodianStatement.objects.filter(status=StatementStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)
    )


def resume_statement(statement_id: int) -> CustodianStatement:
    """Finish checking a statement left `received`, from its stored bytes and signature header.

    Safe to repeat and to run beside another attempt: a statement already accepted, rejected
    or failed is returned unchanged. One that has used up its attempts without an outcome (each
    attempt killed its process) becomes `failed` without another try.
    """
    statement = CustodianStatement.objects.select_related("raw", "custodian").get(pk=statement_id)
    if statement.status != StatementStatus.RECEIVED:
        return statement
    if statement.check_attempts >= settings.STATEMENT_MAX_CHECK_ATTEMPTS:
        _give_up(statement)
    else:
        logger.info("statement resumed", extra={"statement": statement.pk})
        if statement.raw is None:
            assemble_statement(statement)
        else:
            process_statement(
                statement, bytes(statement.raw.content), statement.signature_header or None
            )
    statement.refresh_from_db()
    return statement


def _give_up(statement: CustodianStatement) -> None:
    attempts = statement.check_attempts
    error = statement.check_error or (
        f"the check did not finish in {attempts} attempt(s): the process stopped during it"
    )
    CustodianStatement.objects.filter(pk=statement.pk, status=StatementStatus.RECEIVED).update(
        status=StatementStatus.FAILED, check_error=error
    )
    logger.error("statement check given up", extra={"statement": statement.pk})


def retry_statement(statement_id: int) -> CustodianStatement:
    """An admin re-tries a `failed` statement (after a fix): fresh attempts, checked now."""
    CustodianStatement.objects.filter(pk=statement_id, status=StatementStatus.FAILED).update(
        status=StatementStatus.RECEIVED, check_attempts=0
    )
    return resume_statement(statement_id)


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


def _reject(statement: CustodianStatement, errors: Iterable[LineError | dict]) -> bool:
    report = [e if isinstance(e, dict) else e.as_dict() for e in errors]
    with transaction.atomic():
        if not _claim_outcome(statement):
            return False
        statement.status = StatementStatus.REJECTED
        statement.rejection_report = report
        statement.save()
    logger.info("statement rejected", extra={"statement": statement.pk, "errors": len(report)})
    return True


def _accept(
    statement: CustodianStatement,
    parsed: ParsedStatement,
    assets: dict[str, Asset],
    line_pages: Sequence[int | None] | None = None,
) -> bool:
    with transaction.atomic():
        if not _claim_outcome(statement):
            return False
        CustodianStatement.objects.filter(
            custodian=statement.custodian, as_of=parsed.as_of, status=StatementStatus.ACCEPTED
        ).exclude(pk=statement.pk).update(
            status=StatementStatus.SUPERSEDED, superseded_by=statement
        )
        _insert_lines(statement, parsed, assets, line_pages)
        request_runs(_assets_of(statement))
        statement.as_of = parsed.as_of
        statement.line_count = len(parsed.lines)
        statement.status = StatementStatus.ACCEPTED
        statement.save()
    logger.info("statement accepted", extra={"statement": statement.pk, "lines": len(parsed.lines)})
    return True


def _assets_of(statement: CustodianStatement) -> set[int]:
    """Assets whose reserves may change with this statement: the ones it lists, and the ones
    listed by the statements it supersedes or that supersede it (one query)."""
    return set(
        StatementLine.objects.filter(
            Q(statement=statement)
            | Q(statement__superseded_by=statement)
            | Q(statement__supersedes=statement)
        )
        .values_list("asset_id", flat=True)
        .distinct()
    )


def _insert_lines(
    statement: CustodianStatement,
    parsed: ParsedStatement,
    assets: dict[str, Asset],
    line_pages: Sequence[int | None] | None = None,
) -> None:
    pages = line_pages or [None] * len(parsed.lines)
    rows = [
        (statement.pk, ln.line_no, page, ln.isin, assets[ln.isin].pk, ln.quantity, ln.account,
         ln.balance_type)
        for ln, page in zip(parsed.lines, pages, strict=True)
    ]  # fmt: skip
    columns = ["statement_id", "line_no", "page", "isin", "asset_id", "quantity", "account",
               "balance_type"]  # fmt: skip
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


# --- Statements sent as several pages (semt.002 Pgntn) --------------------------------------


def _attach_page(page: CustodianStatement, parsed: ParsedStatement) -> bool:
    """Join a checked page to the open statement with its custodian, id, as-of and format.

    Under the custodian's lock, so that of pages arriving together exactly one sees the
    statement complete; that one assembles it once this transaction has committed.
    """
    pagination = parsed.pagination
    assert pagination is not None and pagination.statement_id is not None
    with transaction.atomic():
        _lock_custodian(page.custodian)
        if not _claim_outcome(page):
            return False
        statement = _open_paged_statement(page, parsed, pagination.statement_id)
        others = {p.page_no: p for p in statement.pages.only("pk", "page_no", "raw_id")}
        problem = _page_problem(statement, page, others, pagination.page, pagination.last)
        if problem is not None:
            page.status = StatementStatus.REJECTED
            page.statement_ref = pagination.statement_id
            page.page_no = pagination.page
            page.rejection_report = [
                {"line": None, "field": "Pgntn/PgNb", "page": pagination.page, "message": problem}
            ]
            page.save()
            logger.info("page refused", extra={"statement": statement.pk, "page": page.pk})
            return True
        page.part_of = statement
        page.statement_ref = pagination.statement_id
        page.page_no = pagination.page
        page.last_page = pagination.last
        page.as_of = parsed.as_of
        page.status = StatementStatus.PAGE
        page.save()
        if pagination.last:
            statement.page_count = pagination.page
        received = set(others) | {pagination.page}
        complete = statement.page_count is not None and received == set(
            range(1, statement.page_count + 1)
        )
        CustodianStatement.objects.filter(pk=statement.pk).update(page_count=statement.page_count)
        # Conditional, as a second guard: only one page can move the statement on.
        complete = complete and (
            CustodianStatement.objects.filter(
                pk=statement.pk, status=StatementStatus.INCOMPLETE
            ).update(status=StatementStatus.RECEIVED)
            == 1
        )
    logger.info(
        "page received",
        extra={"statement": statement.pk, "page": pagination.page, "complete": complete},
    )
    if complete:
        statement.refresh_from_db()
        assemble_statement(statement)
    return True


def _open_paged_statement(
    page: CustodianStatement, parsed: ParsedStatement, ref: str
) -> CustodianStatement:
    key = {"custodian": page.custodian, "format": page.format, "statement_ref": ref,
           "as_of": parsed.as_of, "raw__isnull": True}  # fmt: skip
    statement = CustodianStatement.objects.filter(
        **key, status__in=[StatementStatus.INCOMPLETE, StatementStatus.RECEIVED]
    ).first()
    if statement is not None:
        return statement
    rejected = (
        CustodianStatement.objects.filter(**key, status=StatementStatus.REJECTED)
        .order_by("-pk")
        .first()
    )
    return CustodianStatement.objects.create(
        custodian=page.custodian,
        uploaded_by=page.uploaded_by,
        format=page.format,
        raw=None,
        as_of=parsed.as_of,
        source=page.source,
        status=StatementStatus.INCOMPLETE,
        statement_ref=ref,
        retry_of=rejected,
    )


def _page_problem(
    statement: CustodianStatement, page: CustodianStatement,
    others: dict[int | None, CustodianStatement], number: int, last: bool,
) -> str | None:  # fmt: skip
    """Why a page cannot join `statement`, or None."""
    name = f"page {number} of statement {statement.statement_ref!r} (#{statement.pk})"
    if number in others:
        earlier = others[number]
        how = (
            "the same bytes sent with another as-of or signature"
            if earlier.raw_id == page.raw_id
            else "different content"
        )
        return (
            f"{name} was already received as #{earlier.pk}, with {how}; a page cannot be "
            "replaced. To correct the statement, send all its pages again once it has been "
            "decided, or under a new statement id."
        )
    if statement.page_count is not None and number > statement.page_count:
        return f"{name} comes after the last page, page {statement.page_count}."
    after = max((n for n in others if n is not None and n > number), default=None)
    if last and after is not None:
        return f"{name} says it is the last page, but page {after} was already received."
    return None


def _assemble(statement: CustodianStatement) -> bool:
    """Check every page of a complete statement together; accept or reject it atomically.

    Each page was checked on arrival, but the registry, the keys and other pages may have
    changed since: the checks run again on all pages, with errors naming page and line, plus
    the one check no page could make alone (a holding listed on two pages).
    """
    pages = list(
        statement.pages.filter(status=StatementStatus.PAGE)
        .select_related("raw", "custodian")
        .order_by("page_no")
    )
    assets = {a.isin: a for a in Asset.objects.all()}
    errors: list[dict] = []
    parts: list[tuple[int, ParsedStatement]] = []
    numbers = [p.page_no for p in pages]
    if statement.page_count is None or numbers != list(range(1, statement.page_count + 1)):
        errors.append(_page_error(None, LineError(None, "Pgntn", "pages are missing")))
    for page in pages:
        assert page.raw is not None  # a page always has its bytes
        raw = bytes(page.raw.content)
        found = _check_signature(page, raw, page.signature_header or None)
        try:
            parsed = parse_statement(statement.format, raw, page.declared_as_of)
        except StatementRejected as exc:
            found += exc.errors
        else:
            found += _check_against_registry(parsed, assets)
            parts.append((page.page_no or 0, parsed))
        errors += [_page_error(page.page_no, e) for e in found]
    errors += _across_pages(parts)
    errors = list({e["message"]: e for e in errors}.values())[:MAX_ERRORS]
    if errors:
        return _reject(statement, errors)
    _label_from_pages(statement, pages)
    lines = tuple(line for _, parsed in parts for line in parsed.lines)
    line_pages = [number for number, parsed in parts for _ in parsed.lines]
    whole = ParsedStatement(statement.format, parts[0][1].as_of, lines)
    logger.info("statement assembled", extra={"statement": statement.pk, "pages": len(pages)})
    return _accept(statement, whole, assets, line_pages)


def _page_error(number: int | None, error: LineError) -> dict:
    if number is None:
        return {**error.as_dict(), "page": None}
    return {**error.as_dict(), "page": number, "message": f"page {number}: {error.message}"}


def _across_pages(parts: list[tuple[int, ParsedStatement]]) -> list[dict]:
    """A holding (ISIN, account, balance type) on two pages would count twice."""
    seen: dict[tuple[str, str, str], tuple[int, int]] = {}
    errors: list[dict] = []
    for number, parsed in parts:
        for line in parsed.lines:
            key = (line.isin, line.account, line.balance_type)
            if key in seen and seen[key][0] != number:
                first_page, first_line = seen[key]
                errors.append(
                    _page_error(
                        number,
                        LineError(
                            line.line_no,
                            "isin",
                            f"line {line.line_no}, field isin: {line.isin} in account "
                            f"{line.account!r} ({line.balance_type}) is already listed on page "
                            f"{first_page}, line {first_line}; a holding must appear once.",
                        ),
                    )
                )
            seen.setdefault(key, (number, line.line_no))
    return errors


def _label_from_pages(statement: CustodianStatement, pages: list[CustodianStatement]) -> None:
    """The statement is custodian-signed only if every page is; admin-entered if any page is."""
    sources = {p.source for p in pages}
    if sources == {StatementSource.CUSTODIAN_SIGNED}:
        statement.source = StatementSource.CUSTODIAN_SIGNED
        statement.signature_status = SignatureStatus.VALID
        keys = {p.signature_key_id for p in pages}
        statement.signature_key_id = keys.pop() if len(keys) == 1 else None
    elif StatementSource.ADMIN_ENTERED in sources:
        statement.source = StatementSource.ADMIN_ENTERED
    else:
        statement.source = StatementSource.CUSTODIAN_UPLOADED


@dataclass(frozen=True)
class PageProgress:
    """Which pages of a statement sent as several pages have arrived."""

    received: list[int]
    missing: list[int]
    total: int | None  # None until the last page has arrived

    @property
    def summary(self) -> str:
        if self.total is not None and not self.missing:
            return f"all {self.total} pages received"
        if self.missing:
            listed = ", ".join(str(n) for n in self.missing)
            text = f"page{'s' if len(self.missing) > 1 else ''} {listed}"
            text += f" of {self.total} missing" if self.total else " missing"
        else:
            top = max(self.received, default=0)
            text = {0: "no page yet", 1: "page 1 received"}.get(top, f"pages 1-{top} received")
        if self.total is None:
            text += "; the last page has not arrived, so the total is unknown"
        return text


def page_progress(statement: CustodianStatement) -> PageProgress | None:
    """For a statement sent as several pages: which have arrived; None for any other."""
    if statement.raw_id is not None:
        return None
    received = sorted(
        p.page_no
        for p in statement.pages.all()
        if p.status == StatementStatus.PAGE and p.page_no is not None
    )
    known = statement.page_count or (max(received) if received else 0)
    missing = [n for n in range(1, known + 1) if n not in set(received)]
    return PageProgress(received, missing, statement.page_count)


def overdue_incomplete(
    queryset: QuerySet[CustodianStatement], now: datetime | None = None
) -> QuerySet[CustodianStatement]:
    """Statements still missing pages longer than STATEMENT_PAGES_DEADLINE after the first."""
    cutoff = (now or timezone.now()) - settings.STATEMENT_PAGES_DEADLINE
    return queryset.filter(status=StatementStatus.INCOMPLETE, received_at__lt=cutoff)


def is_overdue(statement: CustodianStatement, now: datetime | None = None) -> bool:
    cutoff = (now or timezone.now()) - settings.STATEMENT_PAGES_DEADLINE
    return statement.status == StatementStatus.INCOMPLETE and statement.received_at < cutoff


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
    if statement.raw is None:
        raise ValueError("a statement sent as several pages has no bytes of its own")
    digest = statement.raw.sha256
    return RawFile(
        bytes(statement.raw.content),
        content_type,
        f"statement-{statement.pk}-{digest[:12]}.{ext}",
        digest,
    )


# A sum of a billion 38-digit quantities still fits.
_SUM_DIGITS = 60


def holdings_summary(statement: CustodianStatement) -> list[dict]:
    """Per asset and balance type: the total quantity (exact) and how many lines it came from."""
    from django.db.models import Count, Sum

    lines = statement.lines.values("asset__code", "balance_type")
    if connection.vendor == "postgresql":
        # numeric adds up exactly in SQL.
        return list(
            lines.annotate(quantity=Sum("quantity"), lines=Count("id")).order_by(
                "asset__code", "balance_type"
            )
        )
    # SQLite holds quantities as text (see ExactDecimalField): add them up in Decimal, with
    # room for every digit (the default context keeps 28 and would round).
    exact = Context(prec=_SUM_DIGITS, traps=[Inexact, InvalidOperation])
    totals: dict[tuple[str, str], list] = {}
    for code, balance_type, quantity in lines.values_list(
        "asset__code", "balance_type", "quantity"
    ).order_by():
        row = totals.setdefault((code, balance_type), [Decimal(0), 0])
        row[0] = exact.add(row[0], quantity)
        row[1] += 1
    return [
        {"asset__code": code, "balance_type": balance_type, "quantity": total, "lines": count}
        for (code, balance_type), (total, count) in sorted(totals.items())
    ]


def plain_decimal(value: Decimal) -> str:
    """A quantity as people write it: ``1000``, ``12.25``, never ``1E+3`` or trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --- Which statement counts as reserves ---------------------------------------------------


def counting_statements(
    custodian_ids: Iterable[int] | None = None, now: datetime | None = None
) -> dict[tuple[int, int], int]:
    """THE rule: (custodian id, asset id) -> id of the statement that counts as reserves.

    Per custodian and asset (ISIN), the accepted statement with the latest as-of not after
    `now` among those that list the asset. Only its settled lines count (the balance type
    rule). Portal, admin and API all mark statements with this, never with a rule of their own.
    """
    now = now or timezone.now()
    lines = StatementLine.objects.filter(
        statement__status=StatementStatus.ACCEPTED, statement__as_of__lte=now
    )
    statements = CustodianStatement.objects.filter(status=StatementStatus.ACCEPTED, as_of__lte=now)
    if custodian_ids is not None:
        ids = list(custodian_ids)
        lines = lines.filter(statement__custodian_id__in=ids)
        statements = statements.filter(custodian_id__in=ids)
    latest = (
        lines.values("statement__custodian_id", "asset_id")
        .annotate(as_of=Max("statement__as_of"))
        .order_by()
    )
    # At most one accepted statement per custodian and as-of (a database constraint).
    by_as_of = {
        (custodian, as_of): pk
        for pk, custodian, as_of in statements.values_list("pk", "custodian_id", "as_of")
    }
    return {
        (row["statement__custodian_id"], row["asset_id"]): by_as_of[
            (row["statement__custodian_id"], row["as_of"])
        ]
        for row in latest
    }


def mark_counting(statements: Iterable[CustodianStatement]) -> None:
    """Set ``counts_for`` on each statement: the assets it counts as reserves for now."""
    statements = list(statements)
    counting = counting_statements({s.custodian_id for s in statements})
    assets = {a.pk: a for a in Asset.objects.all()}
    for statement in statements:
        statement.counts_for = sorted(
            (
                assets[asset_id]
                for (custodian_id, asset_id), pk in counting.items()
                if pk == statement.pk and custodian_id == statement.custodian_id
            ),
            key=lambda asset: asset.code,
        )


def reject_statement(statement: CustodianStatement, by, reason: str) -> None:
    """An admin rejects a statement by hand; its lines stop counting, its evidence stays.

    Whatever it had superseded counts again, in the same transaction: rejecting the newest
    statement for an as-of never leaves that custodian with no statement for it.
    """
    if not reason.strip():
        raise ValueError("give a reason")
    with transaction.atomic():
        restored = _reject_by_admin(statement.pk, by, reason.strip())
    if restored:
        logger.info("statement restored", extra={"statement": restored, "rejected": statement.pk})
    statement.refresh_from_db()


def _reject_by_admin(statement_id: int, by, reason: str) -> int | None:
    """Reject inside the caller's transaction; returns the id of a statement restored."""
    locked = CustodianStatement.objects.select_for_update().get(pk=statement_id)
    if locked.status == StatementStatus.REJECTED:
        return None
    was = locked.status
    locked.status = StatementStatus.REJECTED
    locked.rejected_by = by
    locked.rejection_report = [
        *locked.rejection_report,
        {"line": None, "field": None, "message": f"Rejected by {by}: {reason}"},
    ]
    locked.save()  # first: at most one accepted statement per custodian and as-of
    request_runs(_assets_of(locked))
    # Of the statements it superseded, at most one is still `superseded` (the others were
    # rejected): it is the one that counted before this one for the same as-of.
    previous = CustodianStatement.objects.select_for_update().filter(
        superseded_by=locked, status=StatementStatus.SUPERSEDED
    )
    restored = None
    if was == StatementStatus.ACCEPTED:
        restored = previous.values_list("pk", flat=True).first()
        previous.update(status=StatementStatus.ACCEPTED, superseded_by=None)
    elif was == StatementStatus.SUPERSEDED:
        # Keep the chain whole: what this one superseded is now superseded by its successor.
        previous.update(superseded_by=locked.superseded_by)
    return restored


@dataclass(frozen=True)
class AfterRejection:
    """For one asset a statement counts for now: the statement that will count instead."""

    asset: Asset
    successor: CustodianStatement | None


def preview_rejection(statements: Iterable[CustodianStatement], by) -> dict[int, list]:
    """Statement id -> [AfterRejection] for each asset it counts for now, if all were rejected.

    Rejects them inside a transaction that is rolled back, so the preview is exactly what
    ``reject_statement`` will do, by the same code.
    """
    statements = list(statements)
    custodians = {s.custodian_id for s in statements}
    before = counting_statements(custodians)
    with transaction.atomic():
        for statement in statements:
            _reject_by_admin(statement.pk, by, "preview")
        after = counting_statements(custodians)
        transaction.set_rollback(True)
    assets = {a.pk: a for a in Asset.objects.all()}
    successors = CustodianStatement.objects.in_bulk(set(after.values()))
    preview: dict[int, list] = {s.pk: [] for s in statements}
    for (custodian_id, asset_id), pk in sorted(before.items(), key=lambda i: assets[i[0][1]].code):
        if pk in preview:
            successor = after.get((custodian_id, asset_id))
            preview[pk].append(AfterRejection(assets[asset_id], successors.get(successor)))
    return preview


# --- The as-of sent with an upload ------------------------------------------------------------


def parse_upload_as_of(text: str) -> datetime:
    """An as-of typed in a form or sent with an upload: ISO 8601 with a UTC offset.

    Raises ValueError saying why. No offset is refused, not guessed: a local time taken as UTC
    would silently shift the statement by hours.
    """
    try:
        parsed = parse_datetime(text.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{text!r} is not a date and time like 2026-11-24T21:00:00Z")
    if parsed.tzinfo is None:
        raise ValueError(
            f"{text!r} has no UTC offset; add one, e.g. 2026-11-24T21:00:00Z or +01:00"
        )
    return parsed


def clean_form_as_of(fmt: str, text: str) -> datetime | None:
    """The as-of typed in an upload form, checked before anything is stored; ValueError if wrong.

    Form fields are not the file's content: a bad one is a form error, not a stored upload
    rejected afterwards. Missing is fine for JSON and semt.002 (the file carries its date).
    """
    if not text.strip():
        if fmt == "csv":
            raise ValueError("a CSV statement needs its as-of (the file does not carry it)")
        return None
    as_of = parse_upload_as_of(text)
    if as_of > timezone.now():
        raise ValueError(f"{as_of.isoformat()} is in the future")
    return as_of
