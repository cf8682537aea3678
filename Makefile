# Racetrack-rs. `make run`: the platform on the embedded default; `make test`: the test suite.
.PHONY: run test test-services build fmt lint bench

run:
	bash scripts/run-local.sh

test-services:
	bash scripts/test-services.sh

# Tests that need Postgres/Redis fail under CI=true when those are missing, and skip outside CI.
test: test-services
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

build:
	cargo build --workspace

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets

bench:
	python3 bench/lifecycle.py
