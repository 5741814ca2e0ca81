#!/usr/bin/env bash
# Create bench/.venv-ls with Label Studio installed, for bench/api_load.py. Idempotent:
# does nothing when the venv already has a working `label-studio` (~1 GB, ~75 s the first time).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-ls"
ls_spec="${LABEL_STUDIO_SPEC:-label-studio}"
if [ -x "$venv/bin/label-studio" ] && "$venv/bin/python" -c "import label_studio" >/dev/null 2>&1; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$ls_spec"
"$venv/bin/python" -c "import label_studio; print('label-studio', label_studio.__version__)"
