# Sourced by scripts/build-kube.sh and scripts/build-kustomize.sh: build Go tools from a pinned
# module once, into a cache folder, and print the folder.
# TRAINLOOP_CACHE moves the cache (default ~/.cache/trainloop).

# The version go.mod (in the current folder) pins for a module, or its replacement's: folder names
# come from go.mod, so they cannot drift from what is built.
go_module_version() {
    go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"
}

# cached_go_build NAME [--dir]: in the folder of the pinned module, with a function
# `build_into STAGING` that builds the tools into STAGING, print the folder NAME-<key>, building
# into it first unless it is complete or --dir asks for its name only. The key hashes go.mod,
# go.sum and the body of `build_into`, so a changed pin or recipe builds afresh, while a change
# elsewhere in the scripts keeps the cache. The hash sees the names of the variables `build_into`
# reads, not their values: those (the versions from go.mod) belong in NAME.
cached_go_build() {
    local name="$1" mode="${2:-}" key dir staging start
    key="$(cat go.mod go.sum <(declare -f build_into) | sha256sum | cut -c1-12)"
    dir="${TRAINLOOP_CACHE:-$HOME/.cache/trainloop}/$name-$key"
    if [[ "$mode" == "--dir" || -f "$dir/complete" ]]; then
        echo "$dir"
        return 0
    fi
    echo "building $name into $dir (the first build takes a while)" >&2
    start=$(date +%s)
    # Built beside the cache folder and moved in whole, so an interrupted build never looks complete.
    staging="$dir.partial"
    rm -rf "$staging"
    mkdir -p "$staging"
    build_into "$staging"
    touch "$staging/complete"
    rm -rf "$dir"
    mv "$staging" "$dir"
    echo "built in $(($(date +%s) - start))s: $(du -sh "$dir" | cut -f1) in $dir" >&2
    echo "$dir"
}
