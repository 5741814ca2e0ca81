#!/usr/bin/env bash
# Create bench/.venv-ls with Label Studio, for bench/api_load.py and bench/labeling.py: the tests' install
# (scripts/setup-label-studio.sh, idempotent), so bench and tests share one venv.
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/setup-label-studio.sh" "$@"
