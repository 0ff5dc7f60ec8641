#!/usr/bin/env bash
# Set everything up and run the whole pipeline (`dvc repro`) on the params.yaml defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
source .venv/bin/activate
dvc repro "$@"
echo
echo "== dev metrics (results/eval/metrics.json) =="
dvc metrics show results/eval/metrics.json
echo
echo "Metrics:     $(pwd)/results/eval/metrics.json"
echo "Predictions: $(pwd)/predictions/ ($(ls predictions | wc -l) CS224N files)"
echo "Model:       $(pwd)/models/multitask/"
echo "Training curves: dvc plots show  (writes dvc_plots/index.html)"
