"""The custodian portal: upload statements, follow their status, manage API tokens."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from audits import statements, tokens
from audits.choices import StatementStatus
from audits.core.statement_formats import RESERVE_BALANCE_TYPES
from audits.downloads import raw_download
from audits.models import ApiToken, CustodianStatement
from audits.permissions import custodian_of, get_visible_or_404, visible_to
from audits.portal.forms import StatementUploadForm, TokenForm


def custodian_required(view):
    """Logged-in custodian users only; the custodian is passed to the view."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        custodian = custodian_of(request.user)
        if custodian is None:
            raise PermissionDenied("The portal is for custodian users; admins use /admin/.")
        return view(request, custodian, *args, **kwargs)

    return wrapper


@custodian_required
@require_http_methods(["GET", "POST"])
def statement_list(request, custodian):
    form = StatementUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        submission = statements.submit_statement(
            custodian=custodian,
            user=request.user,
            raw=data["file"].read(),
            fmt=data["format"],
            as_of=data["as_of"],
            signature_header=data["signature"] or None,
        )
        statement = submission.statement
        if not submission.created:
            again = " It was still waiting to be checked: checking again." * submission.requeued
            messages.info(
                request,
                f"This upload repeats #{statement.pk} (same file, format, as-of and "
                f"signature); it is {statement.status}.{again}",
            )
        elif statement.status == StatementStatus.ACCEPTED:
            messages.success(request, f"Statement #{statement.pk} accepted.")
        elif statement.status == StatementStatus.INCOMPLETE:
            progress = statements.page_progress(statement)
            messages.info(
                request,
                f"Page stored in statement #{statement.pk}, incomplete: "
                f"{progress.summary if progress else ''}.",
            )
        elif statement.status == StatementStatus.REJECTED:
            messages.error(request, f"Statement #{statement.pk} was stored and rejected.")
        else:
            messages.warning(
                request,
                f"Statement #{statement.pk} was stored, but checking it hit an internal error; "
                + (
                    "it will be checked again automatically."
                    if statement.status == StatementStatus.RECEIVED
                    else "an administrator will look at it."
                ),
            )
        return redirect("portal:statement", pk=statement.pk)
    # A page is shown within its statement.
    queryset = visible_to(
        request.user, CustodianStatement.objects.defer("raw__content").filter(part_of=None)
    )
    queryset = queryset.select_related("raw").prefetch_related("pages")
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    for statement in page:
        statement.progress = statements.page_progress(statement)
    statements.mark_counting(page.object_list)
    return render(
        request,
        "portal/statement_list.html",
        {"custodian": custodian, "form": form, "page": page},
        status=400 if form.errors else 200,
    )


@custodian_required
def statement_detail(request, custodian, pk: int):
    statement = get_visible_or_404(
        request.user, CustodianStatement.objects.select_related("raw", "signature_key"), pk=pk
    )
    statements.mark_counting([statement])
    counting = {asset.code for asset in statement.counts_for}
    summary = [
        {
            **row,
            "quantity": statements.plain_decimal(row["quantity"]),
            "counts": (
                row["balance_type"] in RESERVE_BALANCE_TYPES and row["asset__code"] in counting
            ),
        }
        for row in statements.holdings_summary(statement)
    ]
    pages = statement.pages.filter(status=StatementStatus.PAGE).select_related("raw")
    return render(
        request,
        "portal/statement_detail.html",
        {
            "custodian": custodian,
            "statement": statement,
            "summary": summary,
            "progress": statements.page_progress(statement),
            "pages": pages.order_by("page_no"),
            "retries": statement.retries.order_by("pk"),
        },
    )


@custodian_required
def statement_raw(request, custodian, pk: int):
    statement = get_visible_or_404(
        request.user, CustodianStatement.objects.select_related("raw").exclude(raw=None), pk=pk
    )
    return raw_download(statements.raw_file(statement))


@custodian_required
@require_http_methods(["GET", "POST"])
def token_list(request, custodian):
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        _, secret = tokens.create_token(request.user, form.cleaned_data["name"])
        form = TokenForm()
    own = ApiToken.objects.filter(user__custodian_link__custodian=custodian).order_by("-created_at")
    return render(
        request,
        "portal/tokens.html",
        {"custodian": custodian, "form": form, "secret": secret, "tokens": own},
    )


@custodian_required
@require_POST
def token_revoke(request, custodian, pk: int):
    token = get_visible_or_404(
        request.user,
        ApiToken.objects.all(),
        custodian_field="user__custodian_link__custodian",
        pk=pk,
    )
    tokens.revoke(token)
    messages.success(request, f"Token {token} revoked.")
    return redirect("portal:tokens")
