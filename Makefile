# Racetrack-rs. `make run`: the platform on the embedded default; `make test`: the test suite.
.PHONY: run test test-services build fmt lint bench registry-clean base-images docker-build docker-push compose-up compose-down

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

# --- Images and deployment (docker/README.md) ---------------------------------------------------
# Nothing can be pulled on the build machines, so the binaries are built here once (one
# compile for all five images) and each docker/<service>.Dockerfile copies its binary onto the
# debootstrapped base image.
REGISTRY ?= 127.0.0.1:5000
TAG ?= latest
BASE_IMAGE ?= racetrack/debian-base:bookworm
SERVICES := lifecycle image-builder lifecycle-supervisor pub dashboard
# PROFILE=debug packs the binaries `cargo build` already made (the compose test in CI does, to
# spare a release build); images for production use the default.
PROFILE ?= release
BIN_DIR := $(or $(CARGO_TARGET_DIR),target)/$(if $(filter release,$(PROFILE)),release,debug)
DOCKER_CONTEXT := $(or $(CARGO_TARGET_DIR),target)/docker-context
COMPOSE_PROJECT ?= racetrack
COMPOSE := docker-compose -f docker/compose.yaml -p $(COMPOSE_PROJECT)
# The services that drive the engine join the socket's group (docker/README.md, "Risks").
export DOCKER_GID ?= $(shell stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)
export REGISTRY TAG BASE_IMAGE

base-images:
	bash scripts/base-images.sh

docker-build:
	cargo build $(if $(filter release,$(PROFILE)),--release) --workspace --bins
	rm -rf $(DOCKER_CONTEXT) && mkdir -p $(DOCKER_CONTEXT)/bin
	cp $(foreach s,$(SERVICES),$(BIN_DIR)/$(s)) $(DOCKER_CONTEXT)/bin/
	cp docker/*.sh $(DOCKER_CONTEXT)/
	tar -C . --exclude=tests --exclude=__pycache__ -cf - job-types | tar -C $(DOCKER_CONTEXT) -xf -
	@for s in $(SERVICES); do \
		echo "docker build $(REGISTRY)/racetrack/$$s:$(TAG)"; \
		docker build -q -f docker/$$s.Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) \
			-t $(REGISTRY)/racetrack/$$s:$(TAG) $(DOCKER_CONTEXT) >/dev/null || exit 1; \
	done

docker-push: docker-build
	@for s in $(SERVICES); do docker push -q $(REGISTRY)/racetrack/$$s:$(TAG) || exit 1; done

# The platform from those images (no cargo here); admin password: ADMIN_PASSWORD=... or the
# secrets volume's admin-password. COMPOSE_DOWN_FLAGS=-v also deletes the volumes (data, secrets).
compose-up:
	$(COMPOSE) up -d --quiet-pull

compose-down:
	$(COMPOSE) down --remove-orphans $(COMPOSE_DOWN_FLAGS)
