#!/usr/bin/env bash
# `make demo`: the whole loop on the embedded local control plane, with the real kubectl.
# Starts localplane and the operator, applies the example pipeline and deployment, and shows: the
# first run trained on the rows its data URI holds and passing its gates, its model served through
# the Service, normal traffic, new rows landing at the data URI, traffic with a shifted feature, the
# DriftPolicy firing, the Drift run it started trained on the newer data, judged against the
# served champion and promoted, and the lineage of the model now served.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Paths are shown relative to the work tree, as a user there would type them.
cd "$root"
work=.work/demo
bin="$root/target/debug"
rm -rf "$work" && mkdir -p "$work"
demo_start=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Show a command as a user would type it (quoting what the shell would split), then run it.
show() {
  local shown=() arg
  for arg in "$@"; do
    if [[ $arg =~ ^[][A-Za-z0-9_./:=@,+-]+$ ]]; then shown+=("$arg"); else shown+=("'$arg'"); fi
  done
  printf '\033[2m$ %s\033[0m\n' "${shown[*]}"
  "$@"
}
fail() {
  printf '\n\033[1;31mFAILED: %s\033[0m\nread %s:\n' "$1" "$2" >&2
  tail -n 20 "$2" >&2
  exit 1
}

# await SECONDS WHAT LOG COMMAND...: run COMMAND once a second until it succeeds, showing what is
# awaited and the seconds elapsed (on a terminal in place, otherwise a line every 10s); after
# SECONDS, fail pointing at LOG.
await() {
  local timeout=$1 what=$2 log=$3 started=$SECONDS next_line=0
  shift 3
  until "$@" >/dev/null 2>&1; do
    local elapsed=$((SECONDS - started))
    if [ -t 1 ]; then
      printf '\r  waiting for %s ... %ds' "$what" "$elapsed"
    elif ((elapsed >= next_line)); then
      echo "  waiting for $what ... ${elapsed}s"
      next_line=$((elapsed + 10))
    fi
    if ((elapsed >= timeout)); then
      [ -t 1 ] && echo
      fail "gave up waiting for $what after ${timeout}s" "$log"
    fi
    sleep 1
  done
  [ -t 1 ] && printf '\r\033[K'
  echo "  waited $((SECONDS - started))s for $what"
}

pids=()
# Stop localplane (which stops its pods' processes) and the operator, however the demo ends.
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ((status == 0)) || echo "make demo failed (exit status $status); logs: $work/localplane.log $work/operator.log" >&2
}
trap cleanup EXIT

step "Building localplane, the operator, the example trainer, model server and traffic generator, and kubectl-trainloop"
cargo build --quiet -p localplane -p trainloop -p trainloop-example-trainer -p trainloop-example-model-server \
  -p trainloop-example-traffic -p trainloop-plugin
# kubectl finds the plugin `kubectl-trainloop` on the PATH.
export PATH="$bin:$PATH"
build_done=$SECONDS

step "Starting localplane (a local Kubernetes API server whose kubelet runs pods as processes)"
cat > "$work/images.yaml" <<IMAGES
trainloop/example-trainer:0.1: $bin/trainloop-example-trainer
trainloop/example-model-server:0.1: $bin/trainloop-example-model-server
IMAGES
"$bin/localplane" serve --kubeconfig "$work/kubeconfig" --images "$work/images.yaml" --work-dir "$work/plane" \
  > "$work/localplane.log" 2>&1 &
pids+=($!)
await 30 "localplane's kubeconfig" "$work/localplane.log" test -s "$work/kubeconfig"
export KUBECONFIG="$root/$work/kubeconfig" KUBECACHEDIR="$root/$work/kube-cache"

step "Installing the CRDs"
show kubectl apply -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s

step "Starting the operator"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin/trainloop" run --metrics-addr "127.0.0.1:$port" --artifact-root "file://$root/$work/artifacts" --local-files \
  > "$work/operator.log" 2>&1 &
pids+=($!)
operator_log="$work/operator.log"
await 30 "the operator to be ready" "$operator_log" curl -sf "http://127.0.0.1:$port/readyz"

# The condition `type` of a run with status `True`, or nothing.
condition() { kubectl get "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"; }
is_true() { [ "$(condition "$1" "$2")" = True ]; }
# The deployment serves run $1 on all its replicas, with no rollout under way.
serves() {
  [ "$(kubectl get md cancer -o jsonpath='{.status.currentModel.run}')" = "$1" ] &&
    [ -z "$(kubectl get md cancer -o jsonpath='{.status.rollout}')" ] && is_true md/cancer Ready
}

step "1. The example pipeline (Breast Cancer Wisconsin, logistic regression, two gates): its first run"
# The pipeline's data URI is a folder of the demo's own, which holds the first 420 rows of the
# example data now; the rest lands there later, as new data does (step 5).
mkdir -p "$work/data"
head -n 421 examples/data/breast_cancer_wisconsin.csv > "$work/data/breast_cancer_wisconsin.csv"
sed "s|file:///var/lib/trainloop/data/|file://$root/$work/data/|" examples/manifests/pipeline.yaml \
  > "$work/pipeline.yaml"
show kubectl apply -f "$work/pipeline.yaml"
await 60 "the first run cancer-1" "$operator_log" kubectl get tr cancer-1
await 180 "cancer-1 to train and pass its gates" "$operator_log" is_true tr/cancer-1 Ready
show kubectl get trainingpipeline,trainingrun
show kubectl get tr cancer-1 -o jsonpath='{.status.conditions[?(@.type=="Passed")].message}{"\n"}'

step "2. The example ModelDeployment serves the champion cancer-1 behind a Service"
show kubectl apply -f examples/manifests/deployment.yaml
await 120 "cancer-1 served and smoke-tested" "$operator_log" serves cancer-1
show kubectl get modeldeployment cancer
show kubectl get service cancer
ip=$(kubectl get svc cancer -o jsonpath='{.spec.clusterIP}')
url="http://$ip:8080"
kubectl get md cancer -o jsonpath='{.spec.rollout.smokeTest.body}' > "$work/request.json"
# localplane's ClusterIPs are loopback addresses the host reaches.
show curl -sS --fail-with-body "$url/v1/models/cancer:predict" -H 'content-type: application/json' \
  -d "@$work/request.json"
echo

step "3. A DriftPolicy for the demo: the example's featureDrift monitor, evaluated every 5s, firing at once"
cat > "$work/driftpolicy.yaml" <<'POLICY'
apiVersion: trainloop.dev/v1alpha1
kind: DriftPolicy
metadata:
  name: cancer
spec:
  deploymentRef: {name: cancer}
  interval: 5s
  monitors:
    - name: inputs
      featureDrift: {method: psi, threshold: 0.2, minSamples: 200}
  guards: {consecutive: 1, cooldown: 1h, maxRetrainsPerDay: 3}
POLICY
cat "$work/driftpolicy.yaml"
show kubectl apply -f "$work/driftpolicy.yaml"

traffic() {
  show trainloop-example-traffic --url "$url" --model cancer --data examples/data/breast_cancer_wisconsin.csv \
    --features examples/data/breast_cancer_features.json --batch 20 "$@"
}
samples() { kubectl get dp cancer -o jsonpath='{.status.monitors[0].samples}'; }
judged() { local n; n=$(samples); [ -n "$n" ] && ((n >= $1)); }

step "4. Normal traffic: 500 rows of the training data through the Service; drift stays low"
traffic --count 500
await 60 "an evaluation of the 500 rows" "$operator_log" judged 500
show kubectl get driftpolicy cancer
show kubectl get dp cancer -o jsonpath='{range .status.monitors[*]}{.name}: {.feature} {.value} (threshold {.threshold}, {.samples} rows){"\n"}{.featureValues}{"\n"}{end}'
normal=$(printf '%.3f' "$(kubectl get dp cancer -o jsonpath='{.status.monitors[0].value}')")
[ "$(kubectl get dp cancer -o jsonpath='{.status.state}')" = Watching ] ||
  fail "normal traffic did not leave the DriftPolicy Watching" "$operator_log"

step "5. New rows land at the pipeline's data URI; then traffic with a shifted feature: mean_radius 1.5 times larger"
show wc -l "$work/data/breast_cancer_wisconsin.csv"
show cp examples/data/breast_cancer_wisconsin.csv "$work/data/"
show wc -l "$work/data/breast_cancer_wisconsin.csv"
traffic --count 500 --shift 'mean_radius*1.5'

step "6. The DriftPolicy fires and starts a retrain"
await 60 "the Drift run cancer-2" "$operator_log" kubectl get tr cancer-2
last_retrain() { [ "$(kubectl get dp cancer -o jsonpath='{.status.lastTriggeredRun}')" = "$1" ]; }
await 30 "the DriftPolicy to record cancer-2" "$operator_log" last_retrain cancer-2
show kubectl get dp cancer -o jsonpath='{range .status.monitors[*]}{.name}: {.feature} {.value} (threshold {.threshold}, {.samples} rows), firing={.firing}{"\n"}{end}'
show kubectl get dp cancer
show kubectl get events --field-selector reason=DriftDetected
trigger=$(kubectl get tr cancer-2 -o jsonpath='{.spec.trigger.type}')
reason=$(kubectl get tr cancer-2 -o jsonpath='{.spec.trigger.reason}')
show kubectl get tr cancer-2 -o jsonpath='{.spec.trigger.type}: {.spec.trigger.reason}{"\n"}'
[ "$trigger" = Drift ] || fail "cancer-2's trigger is $trigger, not Drift" "$operator_log"
[[ "$reason" == *mean_radius* ]] || fail "cancer-2's reason does not name mean_radius: $reason" "$operator_log"

step "7. The Drift run is trained and judged against the served champion cancer-1"
await 180 "cancer-2 to train and be judged" "$operator_log" is_true tr/cancer-2 Ready
show kubectl get trainingruns
show kubectl get tr cancer-2 -o jsonpath='{.status.conditions[?(@.type=="Passed")].message}{.status.conditions[?(@.type=="Rejected")].message}{"\n"}'
is_true tr/cancer-2 Passed || fail "cancer-2 did not pass its gates" "$operator_log"

step "8. Its promotion: the deployment rolls over to cancer-2"
await 120 "cancer-2 served and smoke-tested" "$operator_log" serves cancer-2
show kubectl get md cancer
show curl -sS --fail-with-body "$url/v1/models/cancer:predict" -H 'content-type: application/json' \
  -d "@$work/request.json"
echo

step "9. The lineage of the model now served: cancer-2, trained on the newer data"
show kubectl trainloop lineage md/cancer
digest() { kubectl get tr "$1" -o jsonpath='{.status.dataDigest}'; }
[ "$(digest cancer-2)" != "$(digest cancer-1)" ] || fail "cancer-2 trained on the same data as cancer-1" "$operator_log"

step "Summary"
cat <<SUMMARY
  cancer-1   trained on 420 rows of the Breast Cancer data, passed its gates, served by ModelDeployment cancer
             data $(digest cancer-1)
  traffic    500 normal rows: largest drift $normal (threshold 0.2)
             500 rows with mean_radius*1.5: DriftPolicy cancer fired
  cancer-2   trigger $trigger: $reason
             trained on the 569 rows the data URI holds now: data $(digest cancer-2)
             passed against the champion cancer-1, promoted; served now
  took       $((SECONDS - build_done))s after the build ($((SECONDS - demo_start))s in all)
  logs       $work/{localplane,operator}.log
SUMMARY
