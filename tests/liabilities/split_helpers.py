"""Running the snapshot splitter both ways: the compiled Splitter (through split_chunks, in
given chunks) and the pure-Python reference (over the lines a binary file would give)."""

from __future__ import annotations

import io
import os

import pytest

from audits.core import liabilities
from audits.core.liabilities import Split, split_chunks, split_reference

SECRET = bytes(range(32))
DECIMALS = {"AAPLx": 6, "MSFTx": 0, "WIDE": 40}

needs_native = pytest.mark.skipif(
    not liabilities.native_available() and not os.environ.get("PORAPP_EXPECT_NATIVE"),
    reason="merkle accelerator not built (python -m audits.core.merkle.build_native)",
)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """data cut at the given offsets (lines may be cut anywhere)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def reference(data: bytes, decimals=DECIMALS) -> tuple[Split, dict[str, bytes]]:
    sinks = {c: io.BytesIO() for c in decimals}
    result = split_reference(io.BytesIO(data), decimals, SECRET, sinks)
    return result, {c: s.getvalue() for c, s in sinks.items()}


def native(chunks: list[bytes], decimals=DECIMALS, **kw) -> tuple[Split, dict[str, bytes]]:
    assert liabilities.native_available()
    sinks = {c: io.BytesIO() for c in decimals}
    result = split_chunks(chunks, decimals, SECRET, sinks, **kw)
    return result, {c: s.getvalue() for c, s in sinks.items()}


def assert_same(data: bytes, cuts: list[int] = (), decimals=DECIMALS) -> Split:
    """Both splitters agree on data (cut at cuts for the compiled one); the result."""
    expected = reference(data, decimals)
    got = native(pieces(data, list(cuts)), decimals)
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    return expected[0]
