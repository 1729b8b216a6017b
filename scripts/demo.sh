#!/usr/bin/env bash
# `make demo`: the training loop on the embedded local control plane, with the real kubectl.
# Starts localplane and the operator, applies the example pipeline, and shows a run being
# trained on real data, judged by its gates, and a second run judged against the champion.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.work/demo"
bin="$root/target/debug"
rm -rf "$work" && mkdir -p "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

step "Building localplane, the operator, the example trainer and model server"
cargo build --quiet -p localplane -p trainloop -p trainloop-example-trainer -p trainloop-example-model-server

step "Starting localplane (a local Kubernetes API server whose kubelet runs pods as processes)"
cat > "$work/images.yaml" <<IMAGES
trainloop/example-trainer:0.1: $bin/trainloop-example-trainer
trainloop/example-model-server:0.1: $bin/trainloop-example-model-server
IMAGES
"$bin/localplane" serve --kubeconfig "$work/kubeconfig" --images "$work/images.yaml" --work-dir "$work/plane" \
  > "$work/localplane.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
[ -s "$work/kubeconfig" ] || { echo "localplane did not start; see $work/localplane.log" >&2; exit 1; }
export KUBECONFIG="$work/kubeconfig"
kc() { kubectl --cache-dir "$work/kube-cache" "$@"; }

step "Installing the CRDs"
kc apply -f "$root/crds/"
kc wait --for=condition=Established crd --all --timeout=60s

step "Starting the operator"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin/trainloop" run --metrics-addr "127.0.0.1:$port" --artifact-root "file://$work/artifacts" \
  > "$work/operator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

step "Applying the example pipeline (Breast Cancer Wisconsin, logistic regression, two gates)"
sed "s|file:///var/lib/trainloop/data/|file://$root/examples/data/|" "$root/examples/manifests/pipeline.yaml" | kc apply -f -
kc wait --for=create trainingrun/cancer-1 --timeout=60s
kc wait --for=condition=Ready trainingrun/cancer-1 --timeout=300s
kc get trainloop
echo "metrics:  $(kc get tr cancer-1 -o jsonpath='{.status.metrics}')"
echo "gates:    $(kc get tr cancer-1 -o jsonpath='{.status.conditions[?(@.type=="Passed")].message}')"
echo "artifact: $(kc get tr cancer-1 -o jsonpath='{.status.artifact.uri}')"

step "Changing a hyperparameter: a new run must beat the champion cancer-1"
kc patch trainingpipeline cancer --type merge -p '{"spec":{"hyperparameters":{"l2":"2.0"}}}'
kc wait --for=create trainingrun/cancer-2 --timeout=60s
kc wait --for=condition=Ready trainingrun/cancer-2 --timeout=300s
kc get trainingruns
echo "cancer-2 trigger: $(kc get tr cancer-2 -o jsonpath='{.spec.trigger.reason}')"
echo "cancer-2 verdict: $(kc get tr cancer-2 -o jsonpath='{.status.conditions[?(@.type=="Passed")].message}{.status.conditions[?(@.type=="Rejected")].message}')"

step "Done: train -> gate -> compare with the champion ran on localplane"
echo "Serving (ModelDeployment, see README) is not in this demo yet; the drift (DriftPolicy) controller is not built yet."
