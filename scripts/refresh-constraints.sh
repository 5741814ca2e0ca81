#!/usr/bin/env bash
# Refresh constraints.txt: install the newest releases pyproject.toml allows into a scratch
# virtualenv and pin what came. Then run scripts/test.sh; commit constraints.txt if it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$PY" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --upgrade pip
"$scratch/venv/bin/pip" install -q "torch==2.13.0"  # the local CPU build; see scripts/setup.sh
"$scratch/venv/bin/pip" install -q -e '.[dev]'
{
  echo "# Versions the test suite passed with. scripts/setup.sh installs with them; refresh with scripts/refresh-constraints.sh."
  "$scratch/venv/bin/pip" freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+.*/torch==\1/'
} > constraints.txt
echo "constraints.txt refreshed; now run scripts/test.sh and commit it if the suite passes" >&2
