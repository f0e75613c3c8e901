"""semt.002.001.11 messages built with python-iso20022, not by hand.

python-iso20022 is generated (with xsdata) from the ISO 20022 message catalogue's XSDs: its
dataclasses carry the element names, nesting, order, code lists and the XSD's minOccurs as
metadata ("required"). Test material built here follows the standard's schema, not our parser's
reading of it. One adaptation: the package names the root class Semt00200111, so a subclass
restores the XSD's root element name, Document.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from python_iso20022.enums import ShortLong1Code, StatementUpdateType1Code
from python_iso20022.semt.enums import SecuritiesBalanceType12Code, StatementBasis1Code
from python_iso20022.semt.semt_002_001_11 import models as m
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDateTime

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.11"


@dataclasses.dataclass
class Document(m.Semt00200111):
    class Meta:
        name = "Document"
        namespace = NAMESPACE


def quantity(q: str | Decimal) -> m.BalanceQuantity13ChoiceSemt00200111:
    return m.BalanceQuantity13ChoiceSemt00200111(
        qty=m.Quantity51ChoiceSemt00200111(
            qty=m.FinancialInstrumentQuantity33ChoiceSemt00200111(unit=Decimal(q))
        )
    )


def sub_balance(code: str, q: str | Decimal) -> m.SubBalanceInformation20Semt00200111:
    return m.SubBalanceInformation20Semt00200111(
        sub_bal_tp=m.SubBalanceType11ChoiceSemt00200111(cd=SecuritiesBalanceType12Code(code)),
        qty=m.Balance21Semt00200111(
            qty=m.SubBalanceQuantity8ChoiceSemt00200111(
                qty=m.FinancialInstrumentQuantity33ChoiceSemt00200111(unit=Decimal(q))
            )
        ),
    )


def balance(
    isin: str, aggregate: str | Decimal, *breakdowns: tuple[str, str], short_long: str = "LONG"
) -> m.AggregateBalanceInformation42Semt00200111:
    """One BalForAcct/BalForSubAcct: AggtBal plus (SubBalTp code, quantity) breakdowns."""
    return m.AggregateBalanceInformation42Semt00200111(
        fin_instrm_id=m.SecurityIdentification19Semt00200111(isin=isin),
        aggt_bal=m.Balance17Semt00200111(
            shrt_lng_ind=ShortLong1Code(short_long), qty=quantity(aggregate)
        ),
        bal_brkdwn=[sub_balance(code, q) for code, q in breakdowns],
    )


def sub_account(
    account_id: str, *balances: m.AggregateBalanceInformation42Semt00200111
) -> m.SubAccountIdentification67Semt00200111:
    return m.SubAccountIdentification67Semt00200111(
        sfkpg_acct=m.SecuritiesAccount25Semt00200111(id=account_id),
        actvty_ind=True,
        bal_for_sub_acct=list(balances),
    )


def report(
    *balances: m.AggregateBalanceInformation42Semt00200111,
    sub_accounts: tuple[m.SubAccountIdentification67Semt00200111, ...] = (),
    page: str = "1",
    last: bool = True,
    statement_id: str | None = "STMT-20261124-1",
    update: str = "COMP",
    basis: str = "SETT",
    sub_account_ind: bool | None = None,
    account: str = "SAFE-1",
    as_of: str = "2026-11-24T21:00:00Z",
) -> Document:
    """A complete semt.002.001.11 Document; SubAcctInd defaults to whether sub-accounts exist."""
    return Document(
        scties_bal_ctdy_rpt=m.SecuritiesBalanceCustodyReportV11Semt00200111(
            pgntn=m.Pagination1Semt00200111(pg_nb=page, last_pg_ind=last),
            stmt_gnl_dtls=m.Statement73Semt00200111(
                stmt_id=statement_id,
                stmt_dt_tm=m.DateAndDateTime2ChoiceSemt00200111(
                    dt_tm=XmlDateTime.from_string(as_of)
                ),
                frqcy=m.Frequency22ChoiceSemt00200111(cd=m.EventFrequency7Code.DAIL),
                upd_tp=m.UpdateType15ChoiceSemt00200111(cd=StatementUpdateType1Code(update)),
                stmt_bsis=m.StatementBasis7ChoiceSemt00200111(cd=StatementBasis1Code(basis)),
                actvty_ind=True,
                sub_acct_ind=bool(sub_accounts) if sub_account_ind is None else sub_account_ind,
            ),
            sfkpg_acct=m.SecuritiesAccount26Semt00200111(id=account),
            bal_for_acct=list(balances),
            sub_acct_dtls=list(sub_accounts),
        )
    )


def render(document: Any) -> bytes:
    """The message as a custodian's system would send it (UTF-8, XML declaration)."""
    serializer = XmlSerializer(config=SerializerConfig(xml_declaration=True, indent="  "))
    return serializer.render(document, ns_map={None: NAMESPACE}).encode()


def is_required(model: type, element: str) -> bool:
    """Whether the XSD makes `element` (an XML name) of `model` mandatory (minOccurs >= 1)."""
    for f in dataclasses.fields(model):
        if f.metadata.get("name") == element:
            return bool(f.metadata.get("required"))
    raise KeyError(f"{model.__name__} has no element {element}")
