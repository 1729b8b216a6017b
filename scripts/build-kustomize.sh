#!/usr/bin/env bash
# Builds the real kustomize CLI for the GitOps example's tests from the module pinned in
# e2e/kustomize/go.mod, into a cache folder named after its version (scripts/go-tool-cache.sh).
# A second run finds the folder complete and does nothing.
#   scripts/build-kustomize.sh          build if needed, then print the folder
#   scripts/build-kustomize.sh --dir    print the folder only
set -euo pipefail
scripts="$(cd "$(dirname "$0")" && pwd)"
source "$scripts/go-tool-cache.sh"
cd "$scripts/../e2e/kustomize"

version="$(go_module_version sigs.k8s.io/kustomize/kustomize/v5)"

build_into() {
    # Stamped like a release, so `kustomize version` names the pinned version; stripped (-s -w).
    go build -mod=readonly -trimpath -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$version" \
        -o "$1/kustomize" sigs.k8s.io/kustomize/kustomize/v5
}

cached_go_build "kustomize-$version" "${1:-}"
