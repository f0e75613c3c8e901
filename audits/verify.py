"""``python -m audits.verify PROOF.json``: the documented entry point of the offline verifier.

The verifier itself is framework-free and lives in :mod:`audits.core.verify`; this module only
keeps the published command working.
"""

from __future__ import annotations

import sys

from audits.core.verify import main

if __name__ == "__main__":
    sys.exit(main())
