# lamb: AWS Lambda on one Linux box.
#
#   sudo make run     build, build the runtime root filesystems, start the daemon
#   sudo make test    every test: unit, root sandbox tests, end-to-end
#   sudo make bench   cold-start and invocation benchmarks -> docs/benchmarks.md
#   make lint         rustfmt and clippy, warnings are errors
#   make fuzz         every fuzz target for FUZZ_SECONDS (default 30) each
#
# Each target installs what it needs (Debian packages, a Python venv) and is
# quick when nothing changed.

SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
DATA_DIR ?= /var/lib/lamb
LISTEN ?= 127.0.0.1:9080
STAMPS := .make

# Debian packages the build, the tests and the benchmark use (the JDK compiles
# the java21 runtime's client and hello-java; npm installs the Node.js
# runtimes' AWS SDK; nftables loads the sandboxes' network rules; the
# network tests start PostgreSQL, the image tests docker-registry, with a CA
# made by openssl; curl fetches Code.Location in a test, node runs a
# function URL's client).
APT_PACKAGES := mmdebstrap busybox-static gcc libc6-dev python3-venv iproute2 crun runc bubblewrap rabbitmq-server openjdk-17-jdk-headless e2fsprogs npm nftables postgresql docker-registry openssl curl nodejs

.PHONY: all build release rootfs test unit-test integration-test lint fuzz bench run install deps examples clean-state sdk-clients

all: build

$(STAMPS):
	@mkdir -p $(STAMPS)

## deps: install the Debian packages above once (again when this Makefile changes)
## (npm counts as there when an npm is on PATH: NodeSource's nodejs carries
## its own and conflicts with Debian's)
deps: $(STAMPS)/deps
$(STAMPS)/deps: Makefile | $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do [ $$p = npm ] && command -v npm >/dev/null && continue; dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p lamb

## rootfs: the runtime root filesystems under rootfs/build (rebuilt when a recipe changes; in parallel;
## LAMB_RUNTIMES=python3.13,nodejs20.x for a subset)
rootfs: deps
	rootfs/build.sh

## examples: the compiled example functions (the static C and the Rust provided bootstraps, hello-java)
examples: deps
	examples/hello-provided/build.sh
	examples/hello-rust/build.sh
	examples/telemetry-extension/build.sh
	examples/web-adapter/build.sh
	examples/hello-java/build.sh
	examples/fastapi-snapstart/build.sh

## sdk-clients: the AWS SDK for JavaScript v3 (npm ci, pinned by integration-tests/js/package-lock.json)
## and the AWS SDK for Rust scenario binary (integration-tests/rust-sdk, a workspace of its own) that
## test_sdk_clients.py runs (the JS SDK wants Node 20 or later); npm comes with NodeSource's nodejs, else from Debian
sdk-clients: deps
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	cd integration-tests/js && npm ci --no-audit --no-fund
	$(CARGO) build --manifest-path integration-tests/rust-sdk/Cargo.toml

test: deps rootfs build examples sdk-clients unit-test integration-test

unit-test:
	$(CARGO) test --workspace

# The runtime-facing suites run a second time on the plain cold-start path
# (`--prewarm off`), so both paths pass every time (docs/prewarm.md).
PREWARM_OFF_SUITES = test_runtimes.py test_hostile_daemon.py test_logging_config.py \
	test_credentials.py test_extensions.py

integration-test:
	integration-tests/run.sh
	LAMB_TEST_PREWARM=off integration-tests/run.sh $(PREWARM_OFF_SUITES)
	@if [ -x rootfs/runtime-clients/tests/run.sh ]; then rootfs/runtime-clients/tests/run.sh; fi

## soak: the long reliability runs (docs/reliability.md): 100,000 invocations across 50 functions, 50 kill -9 rounds
.PHONY: soak
soak: deps rootfs build examples
	LAMB_LOAD_INVOCATIONS=100000 LAMB_CHAOS_ROUNDS=50 integration-tests/run.sh -s test_load.py test_chaos.py

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fuzz: each target (crate:target) for FUZZ_SECONDS, from its committed seeds plus what earlier runs found;
## a panic, a hang, a leak or a memory error fails it
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := lamb-daemon:api_request lamb-daemon:sigv4_verify lamb-init:runtime_api lamb-store:unpack_zip lamb-store:unpack_targz
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@set -e; for t in $(FUZZ_TARGETS); do \
		dir=crates/$${t%%:*}/fuzz; target=$${t#*:}; \
		mkdir -p $$dir/corpus/$$target; \
		cp $$dir/seeds/$$target/* $$dir/corpus/$$target/; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir $$dir $$target $$dir/corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=30; \
	done

bench: deps rootfs examples release
	$(CARGO) bench -p lamb-sandbox --bench cold_start -- --out $(CURDIR)/docs/benchmarks.md
	@if [ -x integration-tests/bench.sh ]; then integration-tests/bench.sh; fi
	@test -x integration-tests/.venv/bin/moto_server || { python3 -m venv integration-tests/.venv && \
		integration-tests/.venv/bin/pip install --quiet -r integration-tests/requirements.txt; }
	integration-tests/.venv/bin/python integration-tests/bench_esm.py
	integration-tests/.venv/bin/python integration-tests/bench_snapstart.py
	integration-tests/.venv/bin/python integration-tests/bench_cluster.py --out docs/benchmarks.md

## run: build everything, start the daemon in the foreground, deploy the examples
run: deps rootfs examples release
	@echo "lamb: serving on http://$(LISTEN) with data in $(DATA_DIR); Ctrl-C stops it"
	@( for i in $$(seq 1 100); do \
		target/release/lamb --endpoint http://$(LISTEN) status >/dev/null 2>&1 && break; sleep 0.1; \
	   done; \
	   if [ -x examples/deploy.sh ]; then LAMB=target/release/lamb LAMB_ENDPOINT=http://$(LISTEN) examples/deploy.sh; fi ) &
	target/release/lamb serve --listen $(LISTEN) --data-dir $(DATA_DIR) --runtimes-dir rootfs/build

## install: the binary into $(PREFIX)/bin, the runtimes into $(DATA_DIR)/runtimes
install: rootfs release
	install -D -m 0755 target/release/lamb $(PREFIX)/bin/lamb
	install -D -m 0755 target/release/lamb-init $(PREFIX)/bin/lamb-init
	mkdir -p $(DATA_DIR)/runtimes
	cp -a --remove-destination rootfs/build/. $(DATA_DIR)/runtimes/
