"""Typed readers for settings that come from the environment only."""

from __future__ import annotations

import os
import re
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DURATION_RE = re.compile(r"([0-9]+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def env_str(name: str, default: str | None = None) -> str:
    """Return a string setting, or raise if it is missing and has no default."""
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    """Return a boolean setting; anything but a clear yes/no is a configuration error."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off.")


def env_int(name: str, default: int) -> int:
    """Return an integer setting."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated list setting, blanks dropped."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_duration(name: str, default: timedelta) -> timedelta:
    """Return a duration setting: seconds, or a number with s, m, h or d (`90s`, `24h`, `2d`)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    match = _DURATION_RE.fullmatch(value.strip().lower())
    if match is None:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of seconds or of s, m, h or d (e.g. 24h), "
            f"got {value!r}."
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
