"""`field__any_of=ids`: membership in a long list of ids as ONE parameter on PostgreSQL.

`field__in=ids` sends one placeholder per id, and Django resolves each one in Python: for
the thousands of ids of a 1,000-asset reconciliation that alone took a noticeable share of the
run. On PostgreSQL `any_of` sends the list as one array (`= ANY(%s)`); elsewhere it is `IN`.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Lookup


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            return "1 = 0", []
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]


# Foreign keys keep their own lookup registry (related lookups): register on both.
models.Field.register_lookup(AnyOf)
models.ForeignObject.register_lookup(AnyOf)
