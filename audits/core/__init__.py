"""The framework-free core: nothing under this package imports Django or the rest of `audits`.

Merkle sum trees, statement parsers, the EVM supply reader, custodian signatures and the
offline verifier live here so that they can be tested without a database and re-used by
anyone who wants to re-check a figure. `pyproject.toml` states the rule as import-linter
contracts and CI enforces it (`lint-imports`).
"""
