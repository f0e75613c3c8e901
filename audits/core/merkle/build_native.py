"""Compile the optional C accelerator: ``python -m audits.core.merkle.build_native``.

Needs a C compiler and OpenSSL's headers (Debian: gcc, libssl-dev). Without it the builder
runs in pure Python: same bytes, slower. `make install` runs this and says which one you got.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_mstnative.c"


def target() -> Path:
    """Where the compiled module goes (next to the source, with this Python's suffix)."""
    return HERE / ("_mstnative" + sysconfig.get_config_var("EXT_SUFFIX"))


def build(quiet: bool = False) -> Path:
    """Compile the module; raise CalledProcessError if the compiler fails."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    out = target()
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    flags = ["-O2", "-shared", "-fPIC", "-pthread", "-std=c99", "-Wall", "-Werror"]
    include = f"-I{sysconfig.get_paths()['include']}"
    cmd = [*shlex.split(cc), *flags, include, str(SOURCE), "-lcrypto", "-lpthread", "-o", str(tmp)]
    subprocess.run(cmd, check=True, capture_output=quiet)
    os.replace(tmp, out)  # atomic: a running build never sees a half-written module
    return out


def main() -> int:
    if target().exists() and target().stat().st_mtime >= SOURCE.stat().st_mtime:
        print(f"merkle accelerator up to date: {target().name}")
        return 0
    try:
        path = build()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(
            f"WARNING: merkle accelerator not built ({exc}); tree builds run in pure Python "
            "(same bytes, slower). Install gcc and libssl-dev to build it.",
            file=sys.stderr,
        )
        return 1
    print(f"merkle accelerator built: {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
