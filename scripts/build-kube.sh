#!/usr/bin/env bash
# Builds the real control plane for tests (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) from the modules pinned in e2e/kube/go.mod, into a cache folder named after the
# pinned versions and go.sum. A second run finds the folder complete and does nothing.
#   scripts/build-kube.sh          build if needed, then print the folder
#   scripts/build-kube.sh --dir    print the folder only
# TRAINLOOP_CACHE moves the cache (default ~/.cache/trainloop).
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
module="$(cd "$(dirname "$script")/../e2e/kube" && pwd)"
cd "$module"

# The versions come from go.mod, so the folder name cannot drift from what is built.
version_of() { go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }
kube="$(version_of k8s.io/kubernetes)"
etcd="$(version_of go.etcd.io/etcd/server/v3)"
sum="$(cat go.mod go.sum "$script" | sha256sum | cut -c1-12)"
dir="${TRAINLOOP_CACHE:-$HOME/.cache/trainloop}/kube-$kube-etcd-$etcd-$sum"

if [[ "${1:-}" == "--dir" ]]; then
    echo "$dir"
    exit 0
fi
if [[ -f "$dir/complete" ]]; then
    echo "$dir"
    exit 0
fi

echo "building Kubernetes $kube and etcd $etcd into $dir (the first build takes a while)" >&2
start=$(date +%s)
staging="$dir.partial"
rm -rf "$staging"
mkdir -p "$staging"
# The version a release build stamps, so /version and kubectl's skew check see the real release.
minor="$(echo "$kube" | cut -d. -f2)"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitTreeState=clean"
done
# Stripped (-s -w): the tests need no debug symbols, and the binaries are a third smaller.
ldflags="-s -w$stamp"
build() { go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$staging/$1" "$2"; }
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build etcd go.etcd.io/etcd/server/v3
touch "$staging/complete"
rm -rf "$dir"
mv "$staging" "$dir"
echo "built in $(( $(date +%s) - start ))s: $(du -sh "$dir" | cut -f1) in $dir" >&2
echo "$dir"
