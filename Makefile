# The README names two commands: `make demo` and `make test`. The other targets are for developers.
CARGO ?= cargo

.PHONY: test lint crds demo bench

## test: formatting, lints, and every test in the workspace
test: lint
	$(CARGO) test --workspace --all-targets

## lint: rustfmt and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## crds: regenerate crds/*.yaml from the Rust types
crds:
	$(CARGO) run --quiet -p trainloop -- crds --dir crds

## demo: the training loop on the embedded local control plane
demo:
	bash scripts/demo.sh

## bench: print the benchmark figures
bench:
	$(CARGO) build --release -p trainloop
	$(CARGO) bench -p localplane --bench throughput
	$(CARGO) bench -p trainloop-example-model-server --bench throughput
	TRAINLOOP_BIN=$(CURDIR)/target/release/trainloop $(CARGO) bench -p trainloop-e2e --bench training
