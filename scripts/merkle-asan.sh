#!/usr/bin/env bash
# The Merkle C accelerator under AddressSanitizer + UndefinedBehaviorSanitizer: build a copy
# of _mstnative into its own directory, then run tests/merkle and the snapshot splitter's
# tests (tests/liabilities/test_split*.py, no database) against it (the ordinary build next to
# the source is untouched), with bounded fuzz runs comparing it with the pure-Python builder
# and splitter. Any memory error or undefined behaviour aborts the test process: the step fails.
#
#   scripts/merkle-asan.sh     # MERKLE_FUZZ_EXAMPLES=1500, LIABILITY_FUZZ_EXAMPLES=1000
#   MERKLE_FUZZ_EXAMPLES=100 LIABILITY_FUZZ_EXAMPLES=100 scripts/merkle-asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CC=${CC:-gcc}

out=var/asan
rm -rf "$out"
mkdir -p "$out"
"$PY" -m audits.core.merkle.build_native --sanitize "$out"
module=$(ls "$PWD/$out"/_mstnative*.so)

# Python itself is not instrumented, so the ASan runtime must be loaded first.
libasan=$("$CC" -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "FATAL: libasan not found ($CC -print-file-name=libasan.so)" >&2; exit 1; }

# detect_leaks=0: the interpreter frees little at exit, and that is not ours to report.
# PYTHONMALLOC=malloc: Python objects (bytes handed to the module) come from malloc, so
# ASan also sees reads past their ends.
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
export PORAPP_MSTNATIVE="$module"
export PORAPP_EXPECT_NATIVE=1
export MERKLE_FUZZ_EXAMPLES="${MERKLE_FUZZ_EXAMPLES:-1500}"
export LIABILITY_FUZZ_EXAMPLES="${LIABILITY_FUZZ_EXAMPLES:-1000}"
[ $# -gt 0 ] || set -- tests/merkle tests/liabilities/test_split.py tests/liabilities/test_split_hostile.py
# --capture=sys: a sanitizer report goes straight to stderr, not into a capture lost on abort.
"$PY" -m pytest -q --capture=sys -p tests.merkle.sanitized_native -p no:cacheprovider \
  "$@"
