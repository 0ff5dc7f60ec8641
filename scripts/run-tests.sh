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
# One worker more than there are cores (at most 8), each taking the next test as it finishes
# one: the Prefect tests (one xdist group, so one worker starts one server) spend most of their
# time waiting on the server, and a third worker on 2 cores fills that time (fresh clone,
# 2 cores: 639 and 716 s of pytest with 3 workers, 711 and 715 s with 2). Each worker runs
# torch on its share of the cores (tests/conftest.py). The end-to-end project is built once
# and shared by the workers (tests/e2e.py). MTB_TEST_WORKERS=0 runs in a single process.
# `-m ""` lifts pyproject's default `-m 'not exhaustive'`: this (CI's) run holds every test,
# the full model-zoo product included; a `-m` among the arguments narrows it again.
cores=$(python -c "import os; print(os.cpu_count() or 1)")
workers=$(( cores + 1 < 8 ? cores + 1 : 8 ))
exec python -m pytest -n "${MTB_TEST_WORKERS:-$workers}" --dist loadgroup -m "" "$@"
