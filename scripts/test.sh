#!/usr/bin/env bash
# Run the whole test suite (lint, format, then SQLite and PostgreSQL tests); sets up .venv first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
scripts/setup-label-studio.sh
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet . || { echo "s2: code is not formatted: run .venv/bin/ruff format ." >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
