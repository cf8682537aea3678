# Racetrack-rs. `make run`: the platform on the embedded default; `make test`: the test suite.
.PHONY: run test test-services build fmt lint bench registry-clean

run:
	bash scripts/run-local.sh

# Postgres, Redis, the local registry and the debootstrapped base images (all idempotent).
test-services:
	bash scripts/test-services.sh
	@if [ -f scripts/registry.sh ]; then bash scripts/registry.sh; fi
	@if [ -f scripts/base-images.sh ]; then bash scripts/base-images.sh; fi

# Tests that need Postgres/Redis fail under CI=true when those are missing, and skip outside CI.
test: test-services
	python3 -m unittest discover -s job-types/python3/tests
	cargo build --workspace --bins
	$(MAKE) lint
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

build:
	cargo build --workspace

fmt:
	cargo fmt --all

# Every target warning-free; outside tests (libraries and binaries) no unwrap/expect: a panic is
# not an error message. A static that cannot fail says why in an `#[allow(..., reason = ...)]`.
lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --lib --bins -- -D warnings -D clippy::unwrap_used -D clippy::expect_used

bench:
	python3 bench/lifecycle.py
	python3 bench/deploy.py
	python3 bench/supervisor.py
	python3 bench/pub.py
	python3 bench/dashboard.py

# Dry run of the registry cleaner (README, "Operations: registry cleaner"); needs
# LIFECYCLE_AUTH_TOKEN. Deleting is explicit: cargo run -p registry-cleaner -- --delete
registry-clean:
	cargo run -q -p registry-cleaner --
