#!/usr/bin/env bash
# Create .venv and install the project with the pinned versions of requirements.lock.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip_quiet() {
  # pip -q still prints a warning for every local index folder it cannot list; hide only those.
  .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
# torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
pip_quiet install -q --disable-pip-version-check "torch==2.13.0"
pip_quiet install -q --disable-pip-version-check -c requirements.lock -e ".[dev]"
