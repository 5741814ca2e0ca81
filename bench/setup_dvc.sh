#!/usr/bin/env bash
# Create bench/.venv-dvc with DVC installed, for bench/versioning.py. Idempotent:
# does nothing when the venv already has a working `dvc`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-dvc"
dvc_spec="${DVC_SPEC:-dvc}"
if [ -x "$venv/bin/dvc" ] && "$venv/bin/dvc" --version >/dev/null 2>&1; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$dvc_spec"
"$venv/bin/dvc" --version
