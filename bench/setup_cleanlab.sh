#!/usr/bin/env bash
# Create bench/.venv-cleanlab with cleanlab installed, for bench/label_errors.py (the peer's find_label_issues).
# Idempotent: does nothing when the venv already imports cleanlab (the first time: about half a minute).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-cleanlab"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import cleanlab" >/dev/null 2>&1; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${CLEANLAB_SPEC:-cleanlab}" "numpy<2.3" scikit-learn
"$venv/bin/python" -c "import cleanlab; print('cleanlab', cleanlab.__version__)"
