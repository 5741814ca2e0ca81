#!/usr/bin/env bash
# Label Studio in its own virtualenv, bench/.venv-ls: the real server tests/labelstudio runs (and the benchmarks).
# Safe to rerun and quiet on success: does nothing when the venv already has a working `label-studio` of the
# pinned version; otherwise creates or repairs it (~1 GB, a minute or two the first time).
#   LABEL_STUDIO_VERSION=1.23.2   the version to pin (the tests were written against it)
#   LABEL_STUDIO_SPEC=...         any other pip spec; then any working install is kept
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/bench/.venv-ls"
version="${LABEL_STUDIO_VERSION:-1.23.2}"
spec="${LABEL_STUDIO_SPEC:-label-studio==$version}"
if [ -n "${LABEL_STUDIO_SPEC:-}" ]; then want=""; else want="$version"; fi

installed() {
  [ -x "$venv/bin/label-studio" ] || return 1
  "$venv/bin/python" - "$want" >/dev/null 2>&1 <<'PY'
import sys

import label_studio

sys.exit(0 if sys.argv[1] in ("", label_studio.__version__) else 1)
PY
}

if installed; then
  exit 0
fi
echo "installing Label Studio ($spec) into bench/.venv-ls (~1 GB, once)..." >&2
python="${PYTHON:-python3}"
if ! "$venv/bin/python" -c "" >/dev/null 2>&1; then
  "$python" -m venv --clear "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2
installed || { echo "s2: Label Studio ($spec) did not install into $venv" >&2; exit 1; }
