"""Liability proofs over the API: public proofs by account hash, operator-only bundles."""

from __future__ import annotations

import re

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from audits import liability_proofs
from audits.permissions import IsAdmin, IsPlatformOperator

_HASH = re.compile(r"[0-9a-fA-F]{64}")
# A published snapshot's trees never change (files are content-addressed), so neither do its
# proofs. A 404 is not cached: the snapshot may not be published yet.
IMMUTABLE = "public, max-age=31536000, immutable"
# A bundle carries the account's nonce: the one thing that keeps the account hash private.
PRIVATE = "no-store"

EXAMPLE_HASH = "4e4b802e1d67920776582ce80caa15dc9f6be73b97fde8c4e069165fa40671d2"
PROOF_EXAMPLE = {
    "format": "por-mst-v1",
    "snapshot": "12",
    "assets": [{"code": "AAPLx", "decimals": 6}],
    "root": {
        "hash": "072ddba5c2bd5e9dbcb6d849746c96a72b15b72c56aba5b8e5a1f0bb9fc06bd4",
        "sums": ["263000000"],
    },
    "leaf": {
        "index": 1,
        "account_hash": EXAMPLE_HASH,
        "balances": ["12000000"],
    },
    "path": [
        {
            "hash": "1e027207091c86250b96a9c9fbc84625d0b21cad014484a8853a562eb4818368",
            "sums": ["251000000"],
        },
        {
            "hash": "fedb3b087454d951c8a394058316a1530352d8776c0546b5e07ea0076a5eb74e",
            "sums": ["0"],
        },
    ],
}
PROOFS_EXAMPLE = {
    "snapshot": {"id": 12, "as_of": "2026-11-28T21:00:00Z"},
    "account_hash": EXAMPLE_HASH,
    "proofs": [PROOF_EXAMPLE],
}
BUNDLE_EXAMPLE = {
    "format": "por-bundle-v1",
    "snapshot": {"id": 12, "as_of": "2026-11-28T21:00:00Z"},
    "account": {
        "id": "u-1001",
        "nonce": "3f1482af676fb47681bb12243e007b545f98747cb3d9238224ee1e58f8751f20",
    },
    "proofs": [
        {
            **PROOF_EXAMPLE,
            "account": {
                "id": "u-1001",
                "nonce": "3f1482af676fb47681bb12243e007b545f98747cb3d9238224ee1e58f8751f20",
            },
        }
    ],
    "attestation": {
        "sequence": 41,
        "payload_digest": "sha256:9b1d5c0f4f0e8a8c2d7f6b1a3e5c7d9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d",
        "url": "/attestations/41/envelope.json",
    },
}


def _json(data, cache_control: str) -> HttpResponse:
    response = HttpResponse(JSONRenderer().render(data), content_type="application/json")
    response["Cache-Control"] = cache_control
    return response


class AccountProofsView(APIView):
    """The `por-mst-v1` proofs of one account hash in a published snapshot, one per asset.

    Public: the account hash is `SHA-256("por-mst-v1/account" || u32be(len(id)) || id ||
    nonce)`, and only the account's owner (who holds the nonce) can compute it. The proofs
    carry no account block. 404 when no asset tree of the snapshot holds the hash.
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        tags=["liabilities"],
        operation_id="snapshot_account_proofs",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="Snapshot id."),
            OpenApiParameter(
                "account_hash",
                str,
                OpenApiParameter.PATH,
                description="The account hash, 64 hex digits (docs/proof-format.md).",
            ),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The proofs."),
            400: OpenApiResponse(description="The account hash is not 64 hex digits."),
            404: OpenApiResponse(description="No published snapshot holds this account hash."),
        },
        examples=[
            OpenApiExample(
                "One asset", value=PROOFS_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request: Request, id: int, account_hash: str) -> HttpResponse:
        if not _HASH.fullmatch(account_hash):
            raise ValidationError({"account_hash": "Must be 64 hexadecimal digits."})
        body = liability_proofs.proofs_document(id, account_hash.lower())
        if body is None:
            raise NotFound("No published snapshot of this id holds this account hash.")
        response = HttpResponse(body, content_type="application/json")
        response["Cache-Control"] = IMMUTABLE
        return response


class AccountBundleView(APIView):
    """A user's proof bundle (`por-bundle-v1`): every asset's proof with the account block
    (id and nonce) and the attestation that names the roots. For the platform operator to
    hand to the user; 404 for anyone else. Never cached: it holds the account's nonce."""

    permission_classes = [IsPlatformOperator | IsAdmin]

    def permission_denied(self, request, message=None, code=None):
        # Nobody but the operator learns that the endpoint, the snapshot or the account exist.
        raise NotFound()

    @extend_schema(
        tags=["liabilities"],
        operation_id="snapshot_account_bundle",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="Snapshot id."),
            OpenApiParameter(
                "account_id", str, OpenApiParameter.PATH, description="The platform's account id."
            ),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The bundle."),
            404: OpenApiResponse(
                description="Not an operator, no such published snapshot, or no such account."
            ),
        },
        examples=[
            OpenApiExample(
                "One asset", value=BUNDLE_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request: Request, id: int, account_id: str) -> HttpResponse:
        try:
            data = liability_proofs.bundle(id, account_id)
        except liability_proofs.NotFound:
            raise NotFound("No such account in a published snapshot of this id.") from None
        response = _json(data, PRIVATE)
        response["Content-Disposition"] = f'attachment; filename="proof-bundle-{id}.json"'
        return response
