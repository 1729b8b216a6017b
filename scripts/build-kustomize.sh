#!/usr/bin/env bash
# Builds the real kustomize CLI for the GitOps example's tests from the module pinned in
# e2e/kustomize/go.mod, into a cache folder named after its version and go.sum. A second run finds
# the folder complete and does nothing.
#   scripts/build-kustomize.sh          build if needed, then print the folder
#   scripts/build-kustomize.sh --dir    print the folder only
# TRAINLOOP_CACHE moves the cache (default ~/.cache/trainloop).
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
module="$(cd "$(dirname "$script")/../e2e/kustomize" && pwd)"
cd "$module"

tool=sigs.k8s.io/kustomize/kustomize/v5
# The version comes from go.mod, so the folder name cannot drift from what is built.
version="$(go list -m -f '{{.Version}}' "$tool")"
sum="$(cat go.mod go.sum "$script" | sha256sum | cut -c1-12)"
dir="${TRAINLOOP_CACHE:-$HOME/.cache/trainloop}/kustomize-$version-$sum"

if [[ "${1:-}" == "--dir" || -f "$dir/complete" ]]; then
    echo "$dir"
    exit 0
fi

echo "building kustomize $version into $dir" >&2
start=$(date +%s)
staging="$dir.partial"
rm -rf "$staging"
mkdir -p "$staging"
# Stamped like a release, so `kustomize version` names the pinned version; stripped (-s -w).
go build -mod=readonly -trimpath -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$version" \
    -o "$staging/kustomize" "$tool"
touch "$staging/complete"
rm -rf "$dir"
mv "$staging" "$dir"
echo "built in $(( $(date +%s) - start ))s: $(du -sh "$dir" | cut -f1) in $dir" >&2
echo "$dir"
