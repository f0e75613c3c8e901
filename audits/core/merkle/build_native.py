"""Compile the optional C accelerator: ``python -m audits.core.merkle.build_native``.

Needs a C compiler and OpenSSL's headers (Debian: gcc, libssl-dev). Without it the builder
runs in pure Python: same bytes, slower. `make install` runs this and says which one you got.

``python -m audits.core.merkle.build_native --sanitize DIR`` compiles a separate copy with
AddressSanitizer and UndefinedBehaviorSanitizer into DIR (never next to the source, where
every import would pick it up); ``scripts/merkle-asan.sh`` runs the merkle tests against it.
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


# Any memory error or undefined behaviour aborts the process (no recovery), so a test run
# against this build fails on the first one.
SANITIZE = [
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
]


def build(quiet: bool = False, *, sanitize: bool = False, out_dir: Path | None = None) -> Path:
    """Compile the module; raise CalledProcessError if the compiler fails."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    out = target() if out_dir is None else out_dir / target().name
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    flags = ["-shared", "-fPIC", "-pthread", "-std=c99", "-Wall", "-Werror"]
    flags += SANITIZE if sanitize else ["-O2"]
    include = f"-I{sysconfig.get_paths()['include']}"
    cmd = [*shlex.split(cc), *flags, include, str(SOURCE), "-lcrypto", "-lpthread", "-o", str(tmp)]
    subprocess.run(cmd, check=True, capture_output=quiet)
    os.replace(tmp, out)  # atomic: a running build never sees a half-written module
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--sanitize"] and len(args) == 2:
        out_dir = Path(args[1])
        out_dir.mkdir(parents=True, exist_ok=True)
        path = build(sanitize=True, out_dir=out_dir)  # a failure here must fail the caller
        print(f"merkle accelerator with sanitizers built: {path}")
        return 0
    if args:
        print("usage: build_native [--sanitize DIR]", file=sys.stderr)
        return 2
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
