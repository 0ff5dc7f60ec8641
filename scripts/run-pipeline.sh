#!/usr/bin/env bash
# Set everything up and run the whole pipeline (`dvc repro`) on the params.yaml defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
source .venv/bin/activate
dvc repro "$@"
echo
python -m pipeline results
echo
echo "Model:       $(pwd)/models/multitask/"
echo "All metrics: dvc metrics show; training curves and dev plots: dvc plots show"
