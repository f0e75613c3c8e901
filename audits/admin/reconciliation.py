"""Reconciliation and collateral eligibility in the admin.

Reconciliations and eligibility events are evidence: read-only here, as in the models. The
only changes are an admin's manual freeze and approval of an unfreeze, each asking for a
reason on a confirmation page and going through `audits.eligibility`, which records the event.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from audits import eligibility, reconciliation
from audits.admin.readonly import ReadOnlyAdmin, confirmation_page
from audits.models import Asset, Eligibility, EligibilityEvent, Reconciliation
from audits.statements import plain_decimal
from audits.triggers import ensure_eligibility_rows

_CSS = {"all": ["porapp/admin.css"]}


def _badge(value: str, label: str):
    # The class carries the colour (static/porapp/admin.css): no inline style.
    return format_html('<span class="por-badge por-{}">{}</span>', value, label)


def _num(value: Decimal | None) -> str:
    return "—" if value is None else plain_decimal(value)


def _when(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


def _link(name: str, pk: int | None, text) -> str:
    if pk is None:
        return "—"
    return format_html(
        '<a href="{}">{}</a>', reverse(f"admin:audits_{name}_change", args=[pk]), text
    )


def _table(headers: list[str], rows) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in r)),) for r in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


# --------------------------------------------------------------------------- reconciliations


_RECONCILIATION_FIELDS = (
    "asset", "status_badge", "reason", "computed_at", "checked_at", "checks", "reserves_text",
    "supply_text", "ratio_text", "shortfall_bps", "liabilities_text", "coverage_text",
    "evidence_as_of", "policy_applied", "statements_used", "readings_used", "liabilities_used",
    "recomputation", "events_caused", "digest",
)  # fmt: skip


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    """Immutable evidence (the model refuses saves and deletes too)."""

    list_display = ["asset", "status_badge", "ratio_text", "shortfall_bps", "reserves_text",
                    "supply_text", "computed_at", "checked_at", "checks"]  # fmt: skip
    list_filter = ["status", "asset"]
    list_select_related = ["asset"]
    date_hierarchy = "computed_at"
    fields = _RECONCILIATION_FIELDS
    readonly_fields = _RECONCILIATION_FIELDS

    class Media:
        css = _CSS

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Reconciliation):
        return _badge(obj.status, obj.get_status_display())

    @admin.display(description="backing ratio", ordering="ratio")
    def ratio_text(self, obj: Reconciliation) -> str:
        return _num(obj.ratio)

    @admin.display(description="reserves (tokens)")
    def reserves_text(self, obj: Reconciliation) -> str:
        return _num(obj.reserves)

    @admin.display(description="supply (tokens)")
    def supply_text(self, obj: Reconciliation) -> str:
        return _num(obj.supply)

    @admin.display(description="users' balances (liabilities, tokens)")
    def liabilities_text(self, obj: Reconciliation) -> str:
        return "no liability snapshot" if obj.liabilities is None else _num(obj.liabilities)

    @admin.display(description="coverage (reserves / liabilities)")
    def coverage_text(self, obj: Reconciliation) -> str:
        return _num(obj.coverage)

    @admin.display(description="liability snapshot")
    def liabilities_used(self, obj: Reconciliation) -> str:
        tree = obj.liabilities_tree
        if tree is None:
            return "none"
        return _table(
            ["snapshot", "as of", "users' balances (smallest unit)", "accounts", "leaves",
             "root hash", "tree file SHA-256"],
            [(f"#{tree.snapshot_id}", _when(tree.snapshot.as_of), str(int(tree.root_sum)),
              tree.account_count, tree.leaf_count, tree.root_hash, tree.file_sha256)],
        )  # fmt: skip

    @admin.display(description="policy applied")
    def policy_applied(self, obj: Reconciliation) -> str:
        return _table(["rule", "value"], sorted(obj.policy.items()))

    @admin.display(description="statements counted")
    def statements_used(self, obj: Reconciliation) -> str:
        links = obj.statement_links.select_related("statement__custodian").order_by("pk")
        rows = [
            (
                _link("custodianstatement", link.statement_id, f"#{link.statement_id}"),
                link.statement.custodian.name,
                _when(link.statement.as_of),
                _num(link.settled),
                _num(link.pending_delivery),
                _num(link.shares_per_token),
                _num(link.tokens),
                "—" if link.sessions_old is None else link.sessions_old,
            )
            for link in links
        ]
        if not rows:
            return "none"
        return _table(["statement", "custodian", "as of", "settled", "pending delivery",
                       "shares per token", "tokens", "sessions old"], rows)  # fmt: skip

    @admin.display(description="supply readings")
    def readings_used(self, obj: Reconciliation) -> str:
        links = obj.reading_links.select_related("reading", "deployment__chain").order_by(
            "deployment__chain__chain_id", "pk"
        )
        rows = [
            (
                str(link.deployment.chain),
                _link(
                    "supplyreading",
                    link.reading_id,
                    link.reading.block_number
                    if link.reading and link.reading.block_number is not None
                    else f"reading #{link.reading_id}",
                ),
                _num(link.circulating),
                _when(link.confirmed_at),
                link.problem or "—",
            )
            for link in links
        ]
        if not rows:
            return "none"
        return _table(["chain", "block", "circulating", "confirmed at", "problem"], rows)

    @admin.display(description="recomputation")
    def recomputation(self, obj: Reconciliation) -> str:
        check = reconciliation.recompute(obj.pk)
        if check.matches:
            return _badge("healthy", "Recomputed from its evidence: matches")
        items = format_html_join("", "<li>{}</li>", ((d,) for d in check.differences))
        return format_html(
            "{}<ul>{}</ul>", _badge("breach", "Recomputed from its evidence: differs"), items
        )

    @admin.display(description="eligibility events caused")
    def events_caused(self, obj: Reconciliation) -> str:
        events = obj.events.order_by("seq")
        links = format_html_join(
            ", ",
            "{}",
            ((_link("eligibilityevent", e.pk, f"#{e.seq} {e.from_state} → {e.to_state}"),)
             for e in events),
        )  # fmt: skip
        return links or "none"


# --------------------------------------------------------------------------- eligibility


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why.")
        return reason


_ELIGIBILITY_FIELDS = (
    "asset", "state_badge", "haircut_bps", "since", "reason", "latest_link", "readiness",
    "frozen_by", "frozen_manually", "history",
)  # fmt: skip


@admin.register(Eligibility)
class EligibilityAdmin(ReadOnlyAdmin):
    list_display = ["asset", "state_badge", "haircut_bps", "since", "reason", "latest_status",
                    "readiness", "frozen_by"]  # fmt: skip
    list_filter = ["state"]
    list_select_related = ["asset__policy", "latest", "frozen_by"]
    search_fields = ["asset__code", "asset__name", "asset__isin"]
    fields = _ELIGIBILITY_FIELDS
    readonly_fields = _ELIGIBILITY_FIELDS
    actions = ["freeze_selected", "approve_unfreeze"]

    class Media:
        css = _CSS

    # Changes only through the two actions, which record an event each.
    def has_transition_permission(self, request) -> bool:
        return request.user.has_perm("audits.change_eligibility")

    def changelist_view(self, request, extra_context=None):
        # "Every asset at a glance": an asset never reconciled yet has no row until now.
        ensure_eligibility_rows(Asset.objects.values_list("pk", flat=True))
        return super().changelist_view(request, extra_context)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Eligibility):
        return _badge(obj.state, obj.get_state_display())

    @admin.display(description="latest status", ordering="latest__status")
    def latest_status(self, obj: Eligibility):
        if obj.latest is None:
            return "none yet"
        return _badge(obj.latest.status, obj.latest.get_status_display())

    @admin.display(description="latest reconciliation")
    def latest_link(self, obj: Eligibility):
        if obj.latest is None:
            return "none yet"
        return format_html("{} {}", _badge(obj.latest.status, obj.latest.get_status_display()),
                           _link("reconciliation", obj.latest_id, obj.latest))  # fmt: skip

    @admin.display(description="healthy streak / needed")
    def readiness(self, obj: Eligibility) -> str:
        needed = eligibility.policy_for(obj.asset).healthy_runs_to_unfreeze
        why_not = eligibility.unfreeze_readiness(obj)
        if obj.state != "frozen":
            return f"{obj.healthy_streak} / {needed}"
        return f"{obj.healthy_streak} / {needed}: " + (why_not or "ready for approval")

    @admin.display(description="event history (newest first)")
    def history(self, obj: Eligibility) -> str:
        events = (
            EligibilityEvent.objects.filter(asset_id=obj.asset_id)
            .select_related("actor", "reconciliation")
            .order_by("-seq")
        )
        rows = [
            (
                _link("eligibilityevent", e.pk, e.seq),
                f"{e.from_state} → {e.to_state}",
                f"{e.from_haircut_bps} → {e.to_haircut_bps}",
                e.reason,
                e.actor or "automatic",
                _when(e.created_at),
                _link("reconciliation", e.reconciliation_id, f"#{e.reconciliation_id}"),
            )
            for e in events
        ]
        if not rows:
            return "none"
        return _table(["seq", "state", "haircut (bps)", "reason", "actor", "time",
                       "reconciliation"], rows)  # fmt: skip

    def _confirm(self, request, queryset, action: str, title: str, intro: str, call) -> object:
        """Ask for a reason, then call ``call(asset_id, user, reason)`` per selected asset."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for row in queryset.select_related("asset"):
                try:
                    call(row.asset_id, request.user, form.cleaned_data["reason"])
                except eligibility.TransitionRefused as exc:
                    self.message_user(request, f"{row.asset.code}: {exc}", messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"{title}: {done} asset(s).", messages.SUCCESS)
            return None
        rows = list(queryset.select_related("asset__policy", "latest", "frozen_by"))
        return confirmation_page(
            self, request, "admin/audits/eligibility_confirm.html", title=title, intro=intro,
            rows=rows, form=form, action=action,
        )  # fmt: skip

    @admin.action(description="Freeze selected assets (asks for a reason)",
                  permissions=["transition"])  # fmt: skip
    def freeze_selected(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            "freeze_selected",
            "Freeze assets",
            "Frozen assets stop counting as collateral at once, whatever the evidence says. "
            "Unfreezing needs healthy reconciliations in a row and an admin's approval.",
            eligibility.manual_freeze,
        )

    @admin.action(description="Approve unfreeze (asks for a reason)", permissions=["transition"])
    def approve_unfreeze(self, request, queryset):
        return self._confirm(
            request,
            queryset,
            "approve_unfreeze",
            "Approve unfreeze",
            "Approved assets count as collateral again, at the policy's base haircut. Each is "
            "checked again when you confirm: an asset without enough healthy runs is refused.",
            eligibility.approve_unfreeze,
        )


@admin.register(EligibilityEvent)
class EligibilityEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "asset", "event_type", "transition", "haircut", "reason", "actor",
                    "created_at", "reconciliation_link"]  # fmt: skip
    list_filter = ["asset", "event_type"]
    list_select_related = ["asset", "actor"]
    search_fields = ["=seq", "asset__code", "reason"]
    fields = ("seq", "event_type", "asset", "transition", "haircut", "reason", "actor",
              "created_at", "reconciliation_link")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="from → to")
    def transition(self, obj: EligibilityEvent) -> str:
        return f"{obj.from_state} → {obj.to_state}"

    @admin.display(description="haircut (bps)")
    def haircut(self, obj: EligibilityEvent) -> str:
        return f"{obj.from_haircut_bps} → {obj.to_haircut_bps}"

    @admin.display(description="reconciliation")
    def reconciliation_link(self, obj: EligibilityEvent) -> str:
        return _link("reconciliation", obj.reconciliation_id, f"#{obj.reconciliation_id}")
