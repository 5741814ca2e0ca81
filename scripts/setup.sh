#!/usr/bin/env bash
# Create .venv and install s2 into it; safe to rerun (does nothing when already up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.s2-installed
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/s2 ]; then
  exit 0
fi
echo "setting up .venv (first run takes a few minutes)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >&2
# torch first and pinned: this machine has a local CPU build; an unpinned torch pulls CUDA wheels.
.venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0" >&2
# constraints.txt pins every package to the versions the suite passed with (scripts/refresh-constraints.sh).
.venv/bin/pip install -q -c constraints.txt -e '.[dev]' >&2
# Byte-compile our packages: with PYTHONDONTWRITEBYTECODE set (as on CI) Python would
# otherwise recompile them on every start of the CLI.
.venv/bin/python -m compileall -q server workers trainer labeling >/dev/null
echo "$want" > "$stamp"
