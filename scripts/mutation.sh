#!/usr/bin/env bash
# Mutation testing (issue 19): how many small changes to the decision code do the tests notice?
#
# mutmut (https://mutmut.readthedocs.io) changes one operator, constant or call at a time in the
# lifecycle core and the controller's pure decision modules, runs the tests that reach the changed
# function, and counts a mutant "killed" when a test fails. The score is killed / (all mutants that
# tests reach); `make mutation` fails below MUTATION_MIN_SCORE (90%).
#
# mutmut imports the mutated code from `mutants/src/`, so the run happens in a staged copy
# (build/mutation-<scope>/) with the package under src/ instead of operator/. The three hypothesis property
# tests of tests/lifecycle (55 s of 60) are left out: they would run for every mutant of `decide`;
# the example tests carry the literal expectations.
#
# Usage: scripts/mutation.sh [lifecycle|controller|all]   (default: all). CPU-heavy: run it niced.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scope=${1:-all}
work="$root/build/mutation-$scope"
min_score=${MUTATION_MIN_SCORE:-90}
children=${MUTATION_CHILDREN:-2}

lifecycle_modules='"src/destinations/lifecycle/*"'
lifecycle_tests='"tests/lifecycle"'
# The controller's decision code: pure functions from Kubernetes objects to observations, health,
# patches and run slots (the kopf handlers around them are exercised by tests/operator).
controller_modules='"src/destinations/controller/observing.py", "src/destinations/controller/health.py",
  "src/destinations/controller/patches.py", "src/destinations/controller/capacity.py"'
controller_tests='"tests/controller/test_observing.py", "tests/controller/test_observing_exact.py",
  "tests/controller/test_health.py", "tests/controller/test_health_exact.py",
  "tests/controller/test_patches.py", "tests/controller/test_capacity.py"'
case "$scope" in
  lifecycle) modules=$lifecycle_modules; tests=$lifecycle_tests ;;
  controller) modules=$controller_modules; tests=$controller_tests ;;
  all) modules="$lifecycle_modules, $controller_modules"; tests="$lifecycle_tests, $controller_tests" ;;
  *) echo "scope must be lifecycle, controller or all, not '$scope'" >&2; exit 2 ;;
esac

rm -rf "$work"
mkdir -p "$work/src"
cp -r "$root/operator/destinations" "$work/src/destinations"
cp -r "$root/tests" "$work/tests"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
cp "$root/pyproject.toml" "$work/pyproject.toml"
cat >>"$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["src/destinations"]
only_mutate = [$modules]
pytest_add_cli_args_test_selection = [$tests]
pytest_add_cli_args = [
  "-p", "no:cacheprovider", "-p", "no:randomly",
  "--deselect", "tests/lifecycle/test_properties.py::test_lifecycle_invariants_hold_over_random_histories",
  "--deselect", "tests/lifecycle/test_schedule_properties.py::test_every_valid_cron_schedule_has_a_next_time_found_quickly",
  "--deselect", "tests/lifecycle/test_schedule_properties.py::test_a_cron_schedule_never_repeats_a_run_time",
]
use_git_change_detection = false
EOF

cd "$work"
"$root/.venv/bin/mutmut" run --max-children "$children" >mutmut-run.log 2>&1 || {
  tail -40 mutmut-run.log >&2
  exit 1
}
"$root/.venv/bin/mutmut" results --all true >results.txt
"$root/.venv/bin/python" "$root/scripts/mutation_score.py" results.txt \
  --min-score "$min_score" --survivors "$work/survivors.txt"
