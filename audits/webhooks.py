"""Placeholder until the webhook delivery lands (issue #10): publish records nothing yet."""

from __future__ import annotations


def publish(event_type: str, msg_id: str, payload: dict) -> list[int]:
    return []
