"""Inclusion proofs read from published liability trees (docs/liabilities.md, "Proofs")."""

from __future__ import annotations
