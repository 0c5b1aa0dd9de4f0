"""Print line coverage per package of `destinations` from the combined data file (`.coverage`).

`make test` measures the test processes and, through coverage's `patch = subprocess`, the operator
and worker processes the tests start; pytest-cov combines them. This groups the result by the first
directory under operator/destinations/ (`controller`, `worker`, `lifecycle` …; top-level modules are
`(top level)`), which `coverage report` cannot do by itself.

Usage: python scripts/coverage_by_package.py [DATA_FILE]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import coverage

PACKAGE = Path("operator") / "destinations"


def main(argv: list[str]) -> int:
    data_file = argv[0] if argv else ".coverage"
    measured = coverage.Coverage(data_file=data_file)  # reads [tool.coverage.*] from pyproject.toml
    measured.load()
    packages = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    patterns = {package: f"{PACKAGE}/{package}/*" for package in packages}
    patterns["(top level)"] = f"{PACKAGE}/*.py"
    print(f"{'package':<14} {'cover':>7}")
    for package, pattern in patterns.items():
        try:
            percent = measured.report(include=[pattern], file=io.StringIO())
        except coverage.exceptions.NoDataError:
            percent = 0.0
        print(f"{package:<14} {percent:>6.1f}%")
    print(f"{'total':<14} {measured.report(file=io.StringIO()):>6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
