"""Balance types a statement line can carry (the one place these constants live).

Custody practice: only settled holdings are in the account and count as reserves. Securities in
transit (bought but not yet received, sold but not yet delivered) are reported as their own figure
so an auditor can see them without them inflating the reserve.
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
