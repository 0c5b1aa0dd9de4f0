# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint mutation

setup:
	bash scripts/setup.sh

# The demo runs on the embedded emulator: its set-up skips building the real control plane.
demo:
	bash scripts/setup.sh --demo
	PATH="$(CURDIR)/.tools/bin:$$PATH" .venv/bin/destinations demo

lint: setup
	.venv/bin/ruff check operator tests benchmarks scripts
	.venv/bin/ruff format --check operator tests benchmarks scripts
	.venv/bin/mypy

# Every cluster test runs on both backends: the embedded emulator and the real control plane.
test: lint
	PATH="$(CURDIR)/.tools/bin:$$PATH" DESTINATIONS_CONTROL_PLANES=embedded,real .venv/bin/pytest -n 2 --cov=destinations --cov-report=term:skip-covered
	@echo "Lifecycle core coverage (must stay at or above 95%):"
	.venv/bin/coverage report --include='operator/destinations/lifecycle/*' --fail-under=95
	@echo "Coverage per package (the operator and worker subprocesses included, [tool.coverage.run] patch):"
	.venv/bin/python scripts/coverage_by_package.py
	@echo "Controller coverage, operator subprocesses included (must stay at or above 75%):"
	.venv/bin/coverage report --include='operator/destinations/controller/*' --fail-under=75
	@echo "Worker coverage, worker subprocesses included (must stay at or above 88%):"
	.venv/bin/coverage report --include='operator/destinations/worker/*' --fail-under=88

# Opt-in (CPU-heavy: about 2,000 mutants, hours on two busy cores): mutation testing of the lifecycle core and the
# controller's decision code with mutmut; prints the score per module and fails below 90% killed.
# `make mutation MUTATION_SCOPE=lifecycle` (or controller) runs one half.
MUTATION_SCOPE ?= all
mutation: setup
	nice -n 10 bash scripts/mutation.sh $(MUTATION_SCOPE)
