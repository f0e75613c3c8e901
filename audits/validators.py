"""Field validators for identifiers; each message says what is wrong and how to fix it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from stdnum import isin as stdnum_isin
from stdnum import lei as stdnum_lei
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength


def _stdnum_message(kind: str, value: str, exc: Exception) -> str:
    if isinstance(exc, InvalidChecksum):
        return f"{value!r} is not a valid {kind}: the check digit is wrong."
    if isinstance(exc, InvalidLength):
        return f"{value!r} is not a valid {kind}: wrong length."
    if isinstance(exc, InvalidComponent):
        return f"{value!r} is not a valid {kind}: unknown country code."
    if isinstance(exc, InvalidFormat):
        return f"{value!r} is not a valid {kind}: only digits and capital letters are allowed."
    return f"{value!r} is not a valid {kind}."


def _validate_stdnum(module, kind: str, code: str, value: str) -> None:
    try:
        module.validate(value)
    except Exception as exc:
        raise ValidationError(_stdnum_message(kind, value, exc), code=code) from None
    if module.compact(value) != value:
        raise ValidationError(
            f"Write the {kind} without spaces or lowercase letters: {module.compact(value)}.",
            code=code,
        )


def validate_isin(value: str) -> None:
    """Refuse anything that is not an ISO 6166 ISIN with a correct check digit."""
    _validate_stdnum(stdnum_isin, "ISIN", "invalid_isin", value)


def validate_lei(value: str) -> None:
    """Refuse anything that is not an ISO 17442 LEI with correct check digits."""
    # python-stdnum checks only the mod-97 digits; ISO 17442 also fixes the length at 20.
    if len(value) != 20:
        raise ValidationError(
            f"{value!r} is not a valid LEI: wrong length ({len(value)} characters, expected 20).",
            code="invalid_lei",
        )
    _validate_stdnum(stdnum_lei, "LEI", "invalid_lei", value)


def validate_evm_address(value: str) -> None:
    """Refuse anything that is not a 20-byte hex address in EIP-55 checksum form."""
    if not is_hex_address(value) or not value.startswith("0x"):
        raise ValidationError(
            f"{value!r} is not an EVM address: expected 0x followed by 40 hex digits.",
            code="invalid_address",
        )
    if not is_checksum_address(value):
        raise ValidationError(
            f"{value!r} fails its EIP-55 checksum; the checksummed form is "
            f"{to_checksum_address(value)} (check you copied the right address).",
            code="invalid_address",
        )


def validate_mic(value: str) -> None:
    """Refuse anything that is not an exchange MIC (ISO 10383) with a known trading calendar."""
    # Imported here: the calendar library is only needed by the few fields that carry a MIC.
    from audits.core.market_hours import known_exchange

    shape_ok = isinstance(value, str) and len(value) == 4 and value.isascii() and value.isalnum()
    if not shape_ok or value != value.upper():
        raise ValidationError(
            f"{value!r} is not a MIC: expected 4 capital letters or digits (ISO 10383), e.g. XNYS.",
            code="invalid_mic",
        )
    if not known_exchange(value):
        raise ValidationError(
            f"{value!r} is not an exchange with a known trading calendar; "
            "use the MIC of the asset's home exchange, e.g. XNYS for the New York Stock Exchange.",
            code="unknown_mic",
        )
