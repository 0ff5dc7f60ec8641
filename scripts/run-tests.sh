#!/usr/bin/env bash
# Set everything up and run the test suite. Tests that need the real CS224N data run when
# MTB_CS224N_DIR (or ../shared/data/cs224n beside the checkout) exists, and skip otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
source .venv/bin/activate
if [ -z "${MTB_CS224N_DIR:-}" ] && [ -d ../shared/data/cs224n ]; then
  MTB_CS224N_DIR="$(cd ../shared/data/cs224n && pwd)"
  export MTB_CS224N_DIR
fi
# The Prefect UI test (tests/flows) renders the UI in headless Chromium; it skips without it.
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || true
ruff check --quiet pipeline stages tests
exec python -m pytest "$@"
