#!/usr/bin/env bash
# Create (or refresh) the pinned virtual environment the tests use: .venv beside the workspace,
# holding scripts/requirements-test.txt. Does nothing when the requirements have not changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
requirements="$root/scripts/requirements-test.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi

command -v python3 >/dev/null || { apt-get update -q && apt-get install -y -q python3 python3-venv; }
python3 -m venv "$venv" 2>/dev/null || { apt-get update -q && apt-get install -y -q python3-venv && python3 -m venv "$venv"; }
"$venv/bin/python" -m pip install -q --disable-pip-version-check --ignore-requires-python -r "$requirements"
echo "$want" > "$stamp"
