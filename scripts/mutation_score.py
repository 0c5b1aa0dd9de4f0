"""Print the mutation score per module from `mutmut results --all true`, and fail below a minimum.

A mutant counts as killed when a test failed (`killed`) or the mutated code hung until mutmut's
timeout (`timeout`); `survived`, `suspicious` and `no tests` (no test reaches the changed function)
count against the score. Skipped mutants are left out.

Usage: python scripts/mutation_score.py RESULTS_FILE --min-score 90 [--survivors FILE]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")
_DETECTED = {"killed", "timeout"}
_LEFT_OUT = {"skipped", "not checked"}


def module_of(mutant: str) -> str:
    """`destinations.lifecycle.core.x_backoff__mutmut_3` -> `destinations.lifecycle.core`."""
    parts = mutant.split(".")
    for index, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:index])
    return mutant.rsplit(".", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="output of `mutmut results --all true`")
    parser.add_argument("--min-score", type=float, default=90.0, help="percent of mutants to kill")
    parser.add_argument("--survivors", type=Path, help="write the mutants not killed here")
    args = parser.parse_args(argv)

    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    missed: list[str] = []
    for line in args.results.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        name, status = match["name"], match["status"]
        by_module[module_of(name)][status] += 1
        if status not in _DETECTED | _LEFT_OUT:
            missed.append(f"{name}: {status}")
    if not by_module:
        print(f"no mutants found in {args.results}", file=sys.stderr)
        return 1

    print(f"{'module':<44} {'killed':>7} {'total':>6} {'score':>7}  not killed")
    killed_all = total_all = 0
    for module in sorted(by_module):
        counts = by_module[module]
        killed = sum(counts[status] for status in _DETECTED)
        total = sum(count for status, count in counts.items() if status not in _LEFT_OUT)
        killed_all += killed
        total_all += total
        others = ", ".join(
            f"{count} {status}" for status, count in sorted(counts.items()) if status not in _DETECTED
        )
        print(f"{module:<44} {killed:>7} {total:>6} {100 * killed / max(total, 1):>6.1f}%  {others}")
    score = 100 * killed_all / max(total_all, 1)
    print(f"{'mutation score':<44} {killed_all:>7} {total_all:>6} {score:>6.1f}%")
    if args.survivors is not None:
        args.survivors.write_text("".join(f"{line}\n" for line in missed))
        print(f"mutants not killed: {args.survivors}")
    if score < args.min_score:
        print(f"mutation score {score:.1f}% is below the minimum {args.min_score:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
