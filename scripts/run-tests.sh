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
# The browser tests (dvc plots, the Prefect UI) need headless Chromium; install it quietly where apt-get can.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium not installed: the browser test will be skipped" >&2
fi
ruff check --quiet pipeline stages tests benchmarks scripts
# Two workers, each taking the next test as it finishes one (so the slow files do not pile up
# on one worker); the Prefect tests share one xdist group, so one worker starts one server.
# The built end-to-end project is built once and shared by both workers (tests/e2e.py).
# MTB_TEST_WORKERS=0 runs in a single process. `-m ""` lifts pyproject's default
# `-m 'not exhaustive'`: this (CI's) run holds every test, the full model-zoo product included;
# a `-m` among the arguments narrows it again.
exec python -m pytest -n "${MTB_TEST_WORKERS:-2}" --dist loadgroup -m "" "$@"
