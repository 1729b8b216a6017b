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

## demo: the whole loop on the embedded local control plane
demo:
	@echo "make demo: the demo is not built yet (it needs localplane and the controllers)." >&2
	@exit 1

## bench: print the benchmark figures
bench:
	@echo "no benchmarks yet"
