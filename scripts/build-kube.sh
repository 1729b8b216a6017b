#!/usr/bin/env bash
# Builds the real control plane for tests (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) from the modules pinned in e2e/kube/go.mod, into a cache folder named after the
# pinned versions (scripts/go-tool-cache.sh). A second run finds the folder complete and does
# nothing.
#   scripts/build-kube.sh          build if needed, then print the folder
#   scripts/build-kube.sh --dir    print the folder only
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
source "$scripts/go-tool-cache.sh"
cd "$scripts/../e2e/kube"

kube="$(go_module_version k8s.io/kubernetes)"
etcd="$(go_module_version go.etcd.io/etcd/server/v3)"

build_into() {
    # The version a release build stamps, so /version and kubectl's skew check see the real release.
    local minor stamp="" pkg ldflags binary
    minor="$(echo "$kube" | cut -d. -f2)"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        stamp+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        stamp+=" -X $pkg.gitTreeState=clean"
    done
    # Stripped (-s -w): the tests need no debug symbols, and the binaries are a third smaller.
    ldflags="-s -w$stamp"
    for binary in kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
        kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
        kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler etcd=go.etcd.io/etcd/server/v3; do
        go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$1/${binary%%=*}" "${binary#*=}"
    done
}

cached_go_build "kube-$kube-etcd-$etcd" "${1:-}"
