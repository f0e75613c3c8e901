"""Balance types a statement line can carry (the one place these constants live).

A statement is on a settled basis: SETTLED is what the account holds now. PENDING_DELIVERY (sold
or transferred out, not yet delivered) is still held, so it is inside the settled figure;
PENDING_RECEIPT (bought or transferred in, not yet received) is not. Both are stored as figures of
their own: reading a statement never adds them to or subtracts them from the settled figure.
Whether a pending delivery is deducted from the reserve is a reconciliation policy, not a parser's.
"""

SETTLED = "settled"
PENDING_RECEIPT = "pending_receipt"
PENDING_DELIVERY = "pending_delivery"

BALANCE_TYPES: tuple[str, ...] = (SETTLED, PENDING_RECEIPT, PENDING_DELIVERY)

# (value, label) pairs, in the shape Django's `choices=` expects.
BALANCE_TYPE_CHOICES: tuple[tuple[str, str], ...] = (
    (SETTLED, "Settled"),
    (PENDING_RECEIPT, "Pending receipt"),
    (PENDING_DELIVERY, "Pending delivery"),
)

# Only these balance types count towards the reserve.
RESERVE_BALANCE_TYPES: frozenset[str] = frozenset({SETTLED})
