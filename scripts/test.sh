#!/usr/bin/env bash
# Run the whole test suite (lint, format, then SQLite and PostgreSQL tests); sets up .venv first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
scripts/setup-label-studio.sh
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet . || { echo "s2: code is not formatted: run .venv/bin/ruff format ." >&2; exit 1; }
# Whole files spread over processes (pytest-xdist), slow files first (tests/conftest.py): most tests wait on servers,
# workers and Label Studio, so one more process than cores keeps the cores busy. S2_TEST_PROCESSES=0: one process.
procs=${S2_TEST_PROCESSES:-$(( $(nproc) + 1 > 4 ? 4 : $(nproc) + 1 ))}
if [ "$procs" -gt 0 ]; then
  set -- -n "$procs" --dist loadfile --no-loadscope-reorder "$@"
fi
exec .venv/bin/python -m pytest "$@"
