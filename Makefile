# The README names two commands: `make demo` and `make test`. The other targets are for developers.
CARGO ?= cargo
# The tests drive the real Helm library (and more) from a pinned virtual environment.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: test fuzz lint crds demo bench python-env kube alerting gitops zsh

# The end-to-end suites that run again on the real control plane (TRAINLOOP_PLANE=kubernetes),
# four tests at a time: each starts its own etcd, API server, controller-manager and scheduler.
ON_KUBERNETES := --test training --test serving --test drift --test object_storage --test plugin -- --test-threads=4

# The randomised tests (property tests, input fuzzing, the chaos suite) replay one fixed sequence
# in `make test`, so that a red run always reproduces; `make fuzz` explores new ones.
TEST_SEED := 20261201

## test: formatting, lints, and every test in the workspace (sets up what the tests need); then
## the end-to-end suites once more on the real Kubernetes control plane
test: export PROPTEST_RNG_SEED = $(TEST_SEED)
test: export CHAOS_SEED = $(TEST_SEED)
test: python-env lint kube alerting gitops zsh
	TRAINLOOP_KUBE_BIN="$$(bash scripts/build-kube.sh --dir)" $(CARGO) test --workspace --all-targets
	TRAINLOOP_KUBE_BIN="$$(bash scripts/build-kube.sh --dir)" TRAINLOOP_PLANE=kubernetes \
		$(CARGO) test -p trainloop-e2e $(ON_KUBERNETES)

## fuzz: the randomised tests with new random seeds and ten times the cases; a failure prints its case
fuzz: python-env kube
	PROPTEST_CASES=30000 $(CARGO) test -p trainloop --test manifest_fuzz
	PROPTEST_CASES=10000 $(CARGO) test -p trainloop --test result_fuzz --test drift_properties
	$(CARGO) test -p trainloop --lib properties
	TRAINLOOP_KUBE_BIN="$$(bash scripts/build-kube.sh --dir)" $(CARGO) test -p trainloop-e2e --test chaos -- --include-ignored

## kube: the real Kubernetes control plane the tests also run on, built once into a cache
kube:
	bash scripts/build-kube.sh

## alerting: the real Prometheus and Alertmanager the monitor tests start (Debian packages)
alerting:
	command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			prometheus prometheus-alertmanager; }

## gitops: the real kustomize (built once into a cache) and a Lua 5.1 interpreter (Debian) that
## the GitOps example's test runs
gitops:
	bash scripts/build-kustomize.sh >/dev/null
	command -v lua5.1 >/dev/null || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends lua5.1; }

## zsh: the shell whose completion of `kubectl trainloop` the plugin's tests drive (Debian)
zsh:
	command -v zsh >/dev/null || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zsh; }

## python-env: the pinned Python packages the tests use, in .venv
python-env:
	bash scripts/python-env.sh

## lint: rustfmt and clippy with warnings as errors
lint:
	rustup component add rustfmt clippy >/dev/null 2>&1 || true
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## crds: regenerate crds/*.yaml and the Helm chart's copy from the Rust types
crds:
	$(CARGO) run --quiet -p trainloop -- crds --dir crds --chart-dir charts/trainloop/files/crds

## demo: the whole loop (train, serve, drift, retrain, promote, lineage) on the embedded local control plane
demo:
	bash scripts/demo.sh

## bench: print the benchmark figures. Every binary and benchmark is built first in one cargo
## invocation, so the whole workspace resolves its features once and no benchmark recompiles
## anything (one package selection per benchmark unified features differently each time)
BENCH := $(CARGO) bench --workspace --bench
bench: python-env
	command -v wrk >/dev/null && command -v nginx >/dev/null || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk nginx; }
	$(CARGO) build --release --workspace --bins --benches
	python3 scripts/bench-drift.py $(CURDIR)/target/release/trainloop
	$(BENCH) drift_monitor
	$(BENCH) throughput
	$(BENCH) http
	TRAINLOOP_BIN=$(CURDIR)/target/release/trainloop $(BENCH) training
	$(BENCH) promotion
