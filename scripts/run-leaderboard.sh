#!/usr/bin/env bash
# The leaderboard preset: set up, train the `cpu-long` budget (or the budget named as $1) as a
# cached DVC experiment, apply it to the workspace (predictions/, results/, models/ and
# params.yaml then hold that run), print the dev table and record benchmarks/best.json.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
budget="${1:-cpu-long}"
bash scripts/setup.sh
source scripts/env.sh
source .venv/bin/activate
python -m pipeline ablate baseline --budget "$budget"
dvc exp apply "baseline-$budget"
python -m pipeline results
python -m pipeline record-best --budget "$budget" --experiment "baseline-$budget" \
    --command "bash scripts/run-leaderboard.sh $budget" --wall-seconds $((SECONDS - start))
