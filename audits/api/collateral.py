"""The collateral feeds for margin engines: every asset's eligibility now (poll it with
`If-None-Match`), and the ordered events since a cursor (catch up after downtime)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audits import collateral
from audits.choices import EligibilityState, ReconciliationStatus, WebhookEventType
from audits.permissions import IsAdminOrReadOnly

CACHE_CONTROL = "public, max-age=5"


def _amount(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=None,
        decimal_places=None,
        coerce_to_string=True,
        allow_null=True,
        read_only=True,
        help_text=help_text + " A decimal string; null without a reconciliation or figure.",
    )


class CollateralSerializer(serializers.Serializer):
    """An asset's eligibility and the latest reconciliation it rests on."""

    eligible = serializers.BooleanField(help_text="True only when the state is eligible.")
    state = serializers.ChoiceField(choices=EligibilityState.choices)
    haircut_bps = serializers.IntegerField(help_text="Collateral haircut in basis points.")
    since = serializers.DateTimeField(
        allow_null=True, help_text="When the asset entered its current state."
    )
    reason = serializers.CharField(help_text="Why it is in its current state.")
    status = serializers.ChoiceField(
        choices=ReconciliationStatus.choices,
        allow_null=True,
        help_text="Status of the latest reconciliation (null: none yet).",
    )
    ratio = _amount("Reserves divided by supply, rounded down to 8 places.")
    reserves = _amount("Reserves in whole tokens (shares converted, rounded down).")
    supply = _amount("Circulating supply in whole tokens, all chains.")
    shortfall_bps = serializers.IntegerField(
        allow_null=True, help_text="Shortfall of reserves against supply, bps rounded up."
    )
    liabilities = _amount(
        "Users' balances in whole tokens: the root sum of the newest published liability "
        "snapshot's tree (null: no snapshot)."
    )
    coverage = _amount("Reserves divided by liabilities, rounded down to 8 places.")
    evidence_as_of = serializers.DateTimeField(
        allow_null=True, help_text="The oldest statement as-of the reserves rest on."
    )
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the latest reconciliation was computed."
    )
    last_checked_at = serializers.DateTimeField(
        source="checked_at",
        allow_null=True,
        help_text="The last run that found the same result (runs every minute).",
    )
    reconciliation_id = serializers.IntegerField(allow_null=True)


class MarketSerializer(serializers.Serializer):
    mic = serializers.CharField(help_text="ISO 10383 MIC of the asset's home exchange.")
    open = serializers.BooleanField(help_text="Whether it is in a trading session now.")
    next_open = serializers.CharField(allow_null=True, help_text="ISO 8601, UTC.")
    next_close = serializers.CharField(allow_null=True, help_text="ISO 8601, UTC.")


class FeedAssetSerializer(CollateralSerializer):
    code = serializers.CharField(source="asset.code")
    isin = serializers.CharField(source="asset.isin")
    market = MarketSerializer()

    class Meta:
        fields = ["code", "isin", *CollateralSerializer._declared_fields, "market"]

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in self.Meta.fields}


class FeedSerializer(serializers.Serializer):
    assets = FeedAssetSerializer(many=True)


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The cursor: gapless, in commit order.")
    event_type = serializers.ChoiceField(choices=WebhookEventType.choices)
    asset = serializers.CharField(source="asset.code")
    isin = serializers.CharField(source="asset.isin")
    from_state = serializers.ChoiceField(choices=EligibilityState.choices)
    to_state = serializers.ChoiceField(choices=EligibilityState.choices)
    from_haircut_bps = serializers.IntegerField()
    to_haircut_bps = serializers.IntegerField()
    reason = serializers.CharField()
    reconciliation_id = serializers.IntegerField(allow_null=True)
    actor = serializers.SerializerMethodField(
        help_text='"admin" when an administrator acted by hand, null when automatic. '
        "Names are never published."
    )
    created_at = serializers.DateTimeField()

    def get_actor(self, event) -> str | None:
        return None if event.actor_id is None else "admin"


class EventsPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next = serializers.URLField(help_text="The same query from the last event on.")
    last_seq = serializers.IntegerField(
        help_text="The seq of the last event here (or `after` when there is none): "
        "store it and ask with after=last_seq next time."
    )
    more = serializers.BooleanField(help_text="True when more events follow this page.")


FEED_EXAMPLE = {
    "assets": [
        {
            "code": "AAPLx",
            "isin": "US0378331005",
            "eligible": False,
            "state": "frozen",
            "haircut_bps": 0,
            "since": "2026-11-29T15:04:00Z",
            "reason": "Not fully backed: reserves 99875 < supply 100000, short by 13 bps",
            "status": "breach",
            "ratio": "0.99875",
            "reserves": "99875",
            "supply": "100000",
            "shortfall_bps": 13,
            "liabilities": "263",
            "coverage": "379.75285171",
            "evidence_as_of": "2026-11-27T21:00:00Z",
            "computed_at": "2026-11-29T15:04:00Z",
            "last_checked_at": "2026-11-29T15:12:00Z",
            "reconciliation_id": 4182,
            "market": {
                "mic": "XNYS",
                "open": False,
                "next_open": "2026-11-30T14:30:00+00:00",
                "next_close": "2026-11-30T21:00:00+00:00",
            },
        }
    ]
}


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, a list of tags, or `*`."""
    if if_none_match.strip() == "*":
        return True
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag in tags


class EligibilityFeedView(APIView):
    """Every active asset's collateral eligibility, with the evidence it rests on.

    Poll it (every few seconds at most; it is cached for 5) with `If-None-Match` set to the
    last `ETag`: an unchanged feed answers 304 with no body.
    """

    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(
        tags=["collateral"],
        operation_id="collateral_eligibility",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="The ETag of the feed you have; 304 if it is still current.",
            )
        ],
        responses={
            200: FeedSerializer,
            304: OpenApiResponse(description="Not modified: your copy is current."),
        },
        examples=[
            OpenApiExample(
                "A frozen asset", value=FEED_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request: Request) -> HttpResponse:
        data = FeedSerializer({"assets": collateral.eligibility_feed()}).data
        body = JSONRenderer().render(data)
        etag = _etag(body)
        if _matches(request.headers.get("If-None-Match", ""), etag):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag
        response["Cache-Control"] = CACHE_CONTROL
        return response


def _non_negative_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ValidationError({name: "Must be a non-negative integer."})
    return int(raw)


class EligibilityEventsView(APIView):
    """Eligibility changes in order, from a cursor: the catch-up path beside webhooks.

    Ask with `after` set to the last `seq` you processed (0 the first time) and follow
    `next` until `more` is false. Every event is seen exactly once, in commit order.
    """

    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(
        tags=["collateral"],
        operation_id="collateral_events",
        parameters=[
            OpenApiParameter("after", int, description="Only events with a larger seq (0)."),
            OpenApiParameter(
                "limit", int, description="At most this many (default 100, max 1000)."
            ),
        ],
        responses={200: EventsPageSerializer},
    )
    def get(self, request: Request) -> Response:
        after = _non_negative_int(request, "after", 0)
        limit = _non_negative_int(request, "limit", collateral.EVENTS_PAGE)
        if not 1 <= limit <= collateral.EVENTS_PAGE_MAX:
            raise ValidationError({"limit": f"Must be between 1 and {collateral.EVENTS_PAGE_MAX}."})
        events = collateral.events_after(after, limit + 1)
        more = len(events) > limit
        events = events[:limit]
        last_seq = events[-1].seq if events else after
        query = urlencode({"after": last_seq, "limit": limit})
        data: dict[str, Any] = {
            "events": EventSerializer(events, many=True).data,
            "next": request.build_absolute_uri(f"{request.path}?{query}"),
            "last_seq": last_seq,
            "more": more,
        }
        return Response(data)
