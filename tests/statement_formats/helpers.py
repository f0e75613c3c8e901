"""Builders shared by the statement format tests."""

from __future__ import annotations

from pathlib import Path

from stdnum import isin as stdnum_isin

SAMPLES = Path(__file__).parent / "samples"
APPLE = "US0378331005"
MICROSOFT = "US5949181045"
NVIDIA = "US67066G1040"
APPLE_BAD_CHECK_DIGIT = "US0378331006"


def sample(name: str) -> bytes:
    """Bytes of a file in samples/."""
    return (SAMPLES / name).read_bytes()


def make_isin(body11: str) -> str:
    """A valid ISIN from its first 11 characters."""
    return body11 + stdnum_isin.calc_check_digit(body11)


def csv_bytes(*rows: str, header: str = "isin,quantity,account,balance_type") -> bytes:
    """A CSV statement from already-formatted rows."""
    return ("\n".join([header, *rows]) + "\n").encode()


def unit(q: str) -> str:
    """An AggtBal/BalBrkdwn quantity block (semt.002.001.11 shape)."""
    return f"<Qty><Qty><Qty><Unit>{q}</Unit></Qty></Qty></Qty>"


def bal_for_acct(isin: str, aggregate: str, *breakdowns: tuple[str, str]) -> str:
    """One <BalForAcct> with optional (code, quantity) sub-balances."""
    parts = [
        "<BalForAcct>",
        f"<FinInstrmId><ISIN>{isin}</ISIN><Desc>TEST</Desc></FinInstrmId>",
        f"<AggtBal><ShrtLngInd>LONG</ShrtLngInd>{unit(aggregate)}</AggtBal>",
    ]
    for code, q in breakdowns:
        parts.append(f"<BalBrkdwn><SubBalTp><Cd>{code}</Cd></SubBalTp>{unit(q)}</BalBrkdwn>")
    parts.append("</BalForAcct>")
    return "\n".join(parts)


# The mandatory StmtGnlDtls elements the parser reads (after StmtDtTm), as a custodian sends them.
GENERAL = (
    "<UpdTp><Cd>COMP</Cd></UpdTp><StmtBsis><Cd>SETT</Cd></StmtBsis><SubAcctInd>false</SubAcctInd>"
)


def semt002(
    *balances: str,
    version: str = "11",
    date: str = "<DtTm>2026-11-24T21:00:00Z</DtTm>",
    general: str = GENERAL,
    account: str = "<SfkpgAcct><Id>SAFE-1</Id></SfkpgAcct>",
    prolog: str = '<?xml version="1.0" encoding="UTF-8"?>',
    pagination: str = "<Pgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></Pgntn>",
) -> bytes:
    """A minimal semt.002 document, one element per line so line numbers are predictable."""
    body = "\n".join(
        [
            prolog,
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.{version}">',
            "<SctiesBalCtdyRpt>",
            pagination,
            f"<StmtGnlDtls><StmtDtTm>{date}</StmtDtTm>{general}</StmtGnlDtls>",
            account,
            *balances,
            "</SctiesBalCtdyRpt>",
            "</Document>",
        ]
    )
    return body.encode()
