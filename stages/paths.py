"""The pipeline's file layout, in one place (dvc.yaml declares the same paths)."""

from pathlib import Path

PARAMS = Path("params.yaml")
PREPARED = Path("data/prepared")
TOKENIZED = Path("data/tokenized")
MLM = Path("models/mlm")
MLM_METRICS = Path("results/mlm/metrics.json")
MLM_LIVE = Path("results/mlm/live")
MODEL = Path("models/multitask")
TRAIN_LIVE = Path("results/train/live")
TRAIN_CHECKPOINTS = Path("checkpoints/train")  # git-ignored scratch, not a DVC out
EVAL_METRICS = Path("results/eval/metrics.json")
EVAL_PREDICTIONS = Path("results/eval/predictions")
EVAL_PLOTS = Path("results/eval/plots")
PREDICTIONS = Path("predictions")
EXPORT_REPORT = Path("results/export/report.json")
LEADERBOARD_ROW = Path("results/export/leaderboard_row.csv")
