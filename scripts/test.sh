#!/usr/bin/env bash
# Run the whole test suite (SQLite and PostgreSQL); sets up .venv first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
