"""Pure helpers of audits.core.evm: exact token arithmetic and URL redaction (no chain needed)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audits.core.evm import redact_url, to_tokens


@given(raw=st.integers(min_value=0, max_value=2**256 - 1), decimals=st.integers(0, 36))
def test_to_tokens_is_exact_for_any_uint256(raw, decimals):
    tokens = to_tokens(raw, decimals)
    assert isinstance(tokens, Decimal)
    with localcontext() as ctx:
        ctx.prec = 200  # enough digits to undo the scaling without rounding
        assert tokens * 10**decimals == raw


def test_to_tokens_examples():
    assert to_tokens(1_500_000, 6) == Decimal("1.5")
    assert to_tokens(1, 18) == Decimal("0.000000000000000001")
    assert to_tokens(2**256 - 1, 0) == Decimal(2**256 - 1)
    assert str(to_tokens(0, 18)) == "0E-18"  # still a Decimal zero, compares equal to 0
    assert to_tokens(0, 18) == 0


@pytest.mark.parametrize("bad", [1.5, "10", True])
def test_to_tokens_rejects_non_int(bad):
    with pytest.raises(TypeError):
        to_tokens(bad, 18)


def test_to_tokens_rejects_bad_decimals():
    with pytest.raises(ValueError):
        to_tokens(1, -1)
    with pytest.raises(ValueError):
        to_tokens(1, 256)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
        ("https://mainnet.infura.io/v3/abc123", "https://mainnet.infura.io/…"),
        ("https://eth.example/rpc?apikey=abc123", "https://eth.example/…"),
        ("https://user:pa55@node.example:8443/x", "https://node.example:8443/…"),
        ("http://[::1]:8545", "http://[::1]:8545"),
        ("http://host:notaport/", "<unparseable RPC URL>"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    for secret in ("abc123", "pa55", "user", "apikey"):
        assert secret not in redact_url(url)
