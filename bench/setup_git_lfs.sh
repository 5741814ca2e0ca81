#!/usr/bin/env bash
# Install git-lfs (Debian's package) for bench/versioning.py's working-folder step, which compares
# `s2 checkout` with git and git + git-lfs. Idempotent: does nothing when `git lfs` already works.
set -euo pipefail
if git lfs version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_git_lfs: git-lfs is missing and there is no apt-get here: install git-lfs, or run with --skip-checkout" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q git-lfs >/dev/null \
  || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q git-lfs >/dev/null; }
git lfs version
