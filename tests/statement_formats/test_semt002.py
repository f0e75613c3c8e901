"""ISO 20022 semt.002 parsing, sub-balance mapping and XML attack resistance."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.statement_formats import (
    PENDING_DELIVERY,
    PENDING_RECEIPT,
    SETTLED,
    Pagination,
    StatementLine,
    StatementRejected,
    parse_statement,
)

from .helpers import (
    APPLE,
    APPLE_BAD_CHECK_DIGIT,
    GENERAL,
    MICROSOFT,
    NVIDIA,
    bal_for_acct,
    sample,
    semt002,
    unit,
)

ACCOUNT = "PORT-7781-0042"


def rejected(raw: bytes, as_of: datetime | None = None) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        parse_statement("semt002", raw, as_of)
    return info.value


def test_real_shaped_v11_sample():
    result = parse_statement("semt002", sample("semt002_v11_custody_statement.xml"))
    assert result.format == "semt002"
    assert result.as_of == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    assert result.pagination == Pagination("CSH-20261124-PORT7781", 1, True)
    assert result.lines == (
        # AAPL: 125000 held now, of which 5000 are sold and due to leave (PEND)
        StatementLine(43, APPLE, Decimal("125000"), ACCOUNT, SETTLED),
        StatementLine(43, APPLE, Decimal("5000"), ACCOUNT, PENDING_DELIVERY),
        # NVDA: 60000 held now, 7500 bought and not yet received (PENR)
        StatementLine(121, NVIDIA, Decimal("60000"), ACCOUNT, SETTLED),
        StatementLine(121, NVIDIA, Decimal("7500"), ACCOUNT, PENDING_RECEIPT),
        # SPY: the BLOK sub-balance is still held, so all 30000 are settled
        StatementLine(172, "US78462F1030", Decimal("30000"), ACCOUNT, SETTLED),
        # no breakdown at all
        StatementLine(220, "IE00B5BMR087", Decimal("42000"), ACCOUNT, SETTLED),
    )


def test_line_numbers_point_at_balforacct_elements():
    text = sample("semt002_v11_custody_statement.xml").decode().splitlines()
    for line in parse_statement("semt002", sample("semt002_v11_custody_statement.xml")).lines:
        assert text[line.line_no - 1].strip() == "<BalForAcct>"


def test_v10_in_envelope_with_apphdr_and_date_only():
    result = parse_statement("semt002", sample("semt002_v10_with_apphdr.xml"))
    assert result.as_of == datetime(2026, 11, 24, tzinfo=UTC)
    assert result.lines == (StatementLine(48, MICROSOFT, Decimal("18250.5"), ACCOUNT, SETTLED),)


def test_date_only_statement_takes_the_upload_time_on_that_day():
    upload = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
    raw = sample("semt002_v10_with_apphdr.xml")
    assert parse_statement("semt002", raw, upload).as_of == upload
    (error,) = rejected(raw, datetime(2026, 11, 25, 0, 30, tzinfo=UTC)).errors
    assert error.field == "as_of" and "2026-11-24" in error.message


@pytest.mark.parametrize("version", ["03", "09", "10", "11", "12"])
def test_any_version_namespace_is_read(version):
    result = parse_statement("semt002", semt002(bal_for_acct(APPLE, "10"), version=version))
    assert result.lines == (StatementLine(7, APPLE, Decimal("10"), "SAFE-1", SETTLED),)


def test_dttm_without_offset_is_utc():
    raw = semt002(bal_for_acct(APPLE, "1"), date="<DtTm>2026-11-24T21:00:00</DtTm>")
    assert parse_statement("semt002", raw).as_of == datetime(2026, 11, 24, 21, tzinfo=UTC)


def test_aggregate_is_the_settled_holding_and_pending_figures_stand_apart():
    # The example: AggtBal 1,250,000 with PEND 40,000 and PENR 75,000 used to store
    # settled 1,135,000 (aggregate minus both). PEND is still held; PENR has not arrived.
    raw = semt002(
        bal_for_acct(APPLE, "1250000", ("AWAS", "1210000"), ("PEND", "40000"), ("PENR", "75000"))
    )
    assert [
        (line.balance_type, line.quantity) for line in parse_statement("semt002", raw).lines
    ] == [
        (SETTLED, Decimal("1250000")),
        (PENDING_RECEIPT, Decimal("75000")),
        (PENDING_DELIVERY, Decimal("40000")),
    ]


def test_pending_figures_above_the_aggregate_are_fine():
    # PEND + PENR (13) above the aggregate (10) was rejected as an impossible breakdown; a
    # large pending receipt beside a small holding is an ordinary settled-basis statement.
    raw = semt002(bal_for_acct(APPLE, "10", ("PEND", "8"), ("PENR", "5")))
    assert {(ln.balance_type, ln.quantity) for ln in parse_statement("semt002", raw).lines} == {
        (SETTLED, Decimal("10")),
        (PENDING_DELIVERY, Decimal("8")),
        (PENDING_RECEIPT, Decimal("5")),
    }


@settings(max_examples=100, deadline=None)
@given(
    aggregate=st.decimals(min_value=0, max_value=10**15, places=4),
    pend=st.none() | st.decimals(min_value=0, max_value=10**15, places=4),
    penr=st.none() | st.decimals(min_value=0, max_value=10**15, places=4),
    others=st.lists(
        st.tuples(
            st.sampled_from(["AWAS", "BLOK", "PLED", "BORR", "LODE"]),
            st.decimals(min_value=0, max_value=10**15, places=2),
        ),
        max_size=3,
        unique_by=lambda t: t[0],
    ),
)
def test_sub_balance_mapping_property(aggregate, pend, penr, others):
    breakdowns = [(code, f"{q:f}") for code, q in others]
    if pend is not None:
        breakdowns.append(("PEND", f"{pend:f}"))
    if penr is not None:
        breakdowns.append(("PENR", f"{penr:f}"))
    lines = parse_statement(
        "semt002", semt002(bal_for_acct(APPLE, f"{aggregate:f}", *breakdowns))
    ).lines
    by_type = {line.balance_type: line.quantity for line in lines}
    # Settled is the aggregate exactly, whatever the sub-balances say.
    expected = {SETTLED: aggregate}
    if pend is not None:
        expected[PENDING_DELIVERY] = pend
    if penr is not None:
        expected[PENDING_RECEIPT] = penr
    assert by_type == expected


@pytest.mark.parametrize(
    ("balance", "line", "field", "fragment"),
    [
        (
            bal_for_acct(APPLE_BAD_CHECK_DIGIT, "1"),
            8,
            "BalForAcct[1]/FinInstrmId/ISIN",
            "check digit",
        ),
        (bal_for_acct(APPLE, "-1"), 9, "BalForAcct[1]/AggtBal/Qty/Qty/Qty/Unit", "negative"),
        (bal_for_acct(APPLE, "NaN"), 9, "BalForAcct[1]/AggtBal/Qty/Qty/Qty/Unit", "plain decimal"),
        (
            "<BalForAcct>\n<FinInstrmId><OthrId><Id>X</Id></OthrId></FinInstrmId>\n"
            f"<AggtBal><ShrtLngInd>LONG</ShrtLngInd>{unit('1')}</AggtBal>\n</BalForAcct>",
            7,
            "BalForAcct[1]/FinInstrmId/ISIN",
            "ISIN is missing",
        ),
        (
            f"<BalForAcct>\n<FinInstrmId><ISIN>{APPLE}</ISIN></FinInstrmId>\n</BalForAcct>",
            7,
            "BalForAcct[1]/AggtBal",
            "aggregate balance is missing",
        ),
        (
            f"<BalForAcct>\n<FinInstrmId><ISIN>{APPLE}</ISIN></FinInstrmId>\n"
            "<AggtBal>\n<ShrtLngInd>SHOR</ShrtLngInd>\n"
            f"{unit('5')}</AggtBal>\n</BalForAcct>",
            10,
            "BalForAcct[1]/AggtBal/ShrtLngInd",
            "short position",
        ),
        (
            f"<BalForAcct>\n<FinInstrmId><ISIN>{APPLE}</ISIN></FinInstrmId>\n"
            "<AggtBal><ShrtLngInd>LONG</ShrtLngInd>\n<Qty><Qty><Qty>\n<FaceAmt>1000</FaceAmt></Qty></Qty></Qty></AggtBal>\n</BalForAcct>",
            11,
            "BalForAcct[1]/AggtBal/Qty/Qty/Qty/FaceAmt",
            "report the number of shares as Unit",
        ),
    ],
)
def test_holding_errors_name_source_line_and_element_path(balance, line, field, fragment):
    errors = rejected(semt002(balance)).errors
    assert [(e.line, e.field) for e in errors] == [(line, field)]
    assert errors[0].message.startswith(f"line {line}, field {field}: ")
    assert fragment in errors[0].message


def test_all_holding_errors_are_collected():
    raw = semt002(
        bal_for_acct(APPLE_BAD_CHECK_DIGIT, "1"),
        bal_for_acct(MICROSOFT, "-5"),
        bal_for_acct(NVIDIA, "1", ("PEND", "abc")),
    )
    fields = [e.field for e in rejected(raw).errors]
    assert fields == [
        "BalForAcct[1]/FinInstrmId/ISIN",
        "BalForAcct[2]/AggtBal/Qty/Qty/Qty/Unit",
        "BalForAcct[3]/BalBrkdwn[1]/Qty/Qty/Qty/Unit",
    ]


def test_duplicate_isin_names_both_balforacct_lines():
    raw = semt002(bal_for_acct(APPLE, "1"), bal_for_acct(APPLE, "2"))
    (error,) = rejected(raw).errors
    assert error.line == 11 and "conflicts with line 7" in error.message


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        (
            {"general": GENERAL.replace("COMP", "DELT")},
            "StmtGnlDtls/UpdTp/Cd",
            "delta statement",
        ),
        ({"account": "<SfkpgAcct><Nm>x</Nm></SfkpgAcct>"}, "SfkpgAcct/Id", "account is missing"),
        ({"date": "<Dt>24.11.2026</Dt>"}, "StmtGnlDtls/StmtDtTm/Dt", "not an ISO date"),
        ({"date": "<DtTm>yesterday</DtTm>"}, "StmtGnlDtls/StmtDtTm/DtTm", "not an ISO date-time"),
    ],
)
def test_statement_level_errors(kwargs, field, fragment):
    errors = rejected(semt002(bal_for_acct(APPLE, "1"), **kwargs)).errors
    assert [e.field for e in errors] == [field]
    assert fragment in errors[0].message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty statement"),
        (semt002(), "empty statement: no BalForAcct"),
        (semt002(bal_for_acct(APPLE, "1")).replace(b"semt.002", b"semt.003"), "not semt.002"),
        (b"<Foo/>", "no semt.002 <Document>"),
        (semt002(bal_for_acct(APPLE, "1"))[:-12], "not well-formed XML"),
        (
            semt002(bal_for_acct(APPLE, "1"), prolog='<?xml version="1.0" encoding="ISO-8859-1"?>'),
            "must be UTF-8",
        ),
        (semt002(bal_for_acct(APPLE, "1")).replace(b"TEST", b"M\xfcller"), "not valid UTF-8"),
    ],
)
def test_file_level_rejections(raw, fragment):
    errors = rejected(raw).errors
    assert len(errors) == 1 and fragment in errors[0].message


def test_undefined_entity_is_not_well_formed():
    raw = semt002(bal_for_acct(APPLE, "1")).replace(b"TEST", b"&lol9;")
    (error,) = rejected(raw).errors
    assert error.line == 8 and "undefined entity" in error.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11"><SctiesBalCtdyRpt>
<SfkpgAcct><Id>&lol9;</Id></SfkpgAcct></SctiesBalCtdyRpt></Document>
"""


def test_billion_laughs_is_rejected_quickly():
    started = time.monotonic()
    (error,) = rejected(BILLION_LAUGHS).errors
    assert time.monotonic() - started < 1
    assert error.line == 2 and "DTD" in error.message
    assert "lol" not in error.message


def test_xxe_does_not_read_the_file(tmp_path):
    marker = "PORAPP-XXE-MARKER-7f3a9c"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    for doctype in (
        f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>',
        f'<!DOCTYPE Document [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]>',
        f'<!DOCTYPE Document SYSTEM "{secret.as_uri()}">',
    ):
        raw = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + doctype
            + "\n"
            + semt002(bal_for_acct(APPLE, "1"), prolog="").decode().replace("TEST", "&xxe;")
        ).encode()
        exc = rejected(raw)
        (error,) = exc.errors
        assert "DTD" in error.message
        assert marker not in exc.report()
        assert marker not in repr(exc.as_dicts())


def test_internal_dtd_without_entities_is_rejected_too():
    raw = semt002(bal_for_acct(APPLE, "1"), prolog='<?xml version="1.0"?>\n<!DOCTYPE Document>')
    (error,) = rejected(raw).errors
    assert error.line == 2 and "DTD" in error.message
