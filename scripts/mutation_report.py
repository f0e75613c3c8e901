"""Per-module mutation scores from the last `mutmut run` (run from the project root).

    python scripts/mutation_report.py [--fail-under 85] [--survivors]

Reads `mutmut results --all true` (one line `name: status` per mutant) rather than mutmut's
internal files, so it keeps working when modules or mutant names change. A mutant counts as
detected when a test killed it, it timed out (a mutant that hangs is caught), or the type
checker refused it; "no tests" and "survived" count against the score. Mutants excluded with
`# pragma: no mutate` are never generated, so they are in neither count.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

DETECTED = frozenset({"killed", "timeout", "caught by type check"})


def read_results(mutmut: str) -> dict[str, str]:
    """Mutant name -> status, for every mutant of the last run."""
    out = subprocess.run(
        [mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    results: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            results[name] = status
    return results


def module_of(mutant: str) -> str:
    """`pkg.mod.x_func__mutmut_3` and `pkg.mod.xǁClassǁmethod__mutmut_3` -> `pkg.mod`."""
    return mutant.rsplit(".", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-under", type=float, default=None, metavar="PERCENT")
    parser.add_argument("--survivors", action="store_true", help="list undetected mutants")
    parser.add_argument("--mutmut", default=str(Path(sys.executable).parent / "mutmut"))
    args = parser.parse_args(argv)

    results = read_results(args.mutmut)
    if not results:
        print("no mutmut results: run `mutmut run` first", file=sys.stderr)
        return 2
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    undetected: dict[str, list[str]] = defaultdict(list)
    for name, status in results.items():
        by_module[module_of(name)][status] += 1
        if status not in DETECTED:
            undetected[module_of(name)].append(f"{name}: {status}")

    header = f"{'module':<45} {'detected':>8} {'survived':>8} {'no tests':>8} {'other':>6}"
    print(f"{header} {'total':>6} {'score':>7}")
    below = []
    for module in sorted(by_module):
        counts = by_module[module]
        total = sum(counts.values())
        if counts["not checked"] == total:
            print(f"{module:<45} not run (restricted with MUTANTS=...)")
            continue
        detected = sum(counts[s] for s in DETECTED)
        other = total - detected - counts["survived"] - counts["no tests"]
        score = 100 * detected / total
        row = f"{module:<45} {detected:>8} {counts['survived']:>8} {counts['no tests']:>8}"
        print(f"{row} {other:>6} {total:>6} {score:>6.1f}%")
        if counts["not checked"]:
            print(f"  ({counts['not checked']} mutants not checked: the run was incomplete)")
        if args.fail_under is not None and score < args.fail_under:
            below.append(module)
    if args.survivors:
        for module in sorted(undetected):
            print(f"\n{module}:")
            for line in sorted(undetected[module]):
                print(f"  {line}")
    if below:
        print(f"\nbelow {args.fail_under:g}%: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
