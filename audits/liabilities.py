"""Liability snapshots: the platform operator's upload of users' balances, checked whole and
built into one Merkle sum tree per asset by a Celery job (docs/liabilities.md)."""

from __future__ import annotations
