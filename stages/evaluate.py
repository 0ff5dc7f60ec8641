"""DVC stage: dev metrics -> results/eval/metrics.json; dev/test predictions for export;
dev plot data -> results/eval/plots (drawn by `dvc plots show`, see dvc.yaml)."""

import json

from pipeline.config import load_params
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    from pipeline.evaluate import evaluate_run  # after validation, as in stages/train.py

    metrics = evaluate_run(paths.MODEL, paths.TOKENIZED, params.tasks, params.evaluate.batch_size,
                           paths.EVAL_METRICS, paths.EVAL_PREDICTIONS, paths.EVAL_PLOTS,
                           predict_test=params.evaluate.predict_test)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"metrics: {paths.EVAL_METRICS}")


if __name__ == "__main__":
    run_stage(main)
