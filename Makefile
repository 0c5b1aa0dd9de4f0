# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
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
