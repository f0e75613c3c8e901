"""Public pages (no login): attestations with their downloads and the in-browser verifier."""
