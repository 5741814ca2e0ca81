#!/usr/bin/env bash
# Create bench/.venv-mlflow with MLflow installed, for bench/dashboards.py (the peer's compare-runs page).
# Idempotent: does nothing when the venv already has a working `mlflow` (the first time: a few minutes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-mlflow"
mlflow_spec="${MLFLOW_SPEC:-mlflow}"
if [ -x "$venv/bin/mlflow" ] && "$venv/bin/python" -c "import mlflow" >/dev/null 2>&1; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$mlflow_spec"
"$venv/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__)"
