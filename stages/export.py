"""DVC stage: predictions -> the CS224N leaderboard files in predictions/; this run's
leaderboard row (params + dev metrics) -> results/export/leaderboard_row.csv."""

from pipeline.config import load_params
from pipeline.export import export_all
from pipeline.leaderboard import write_own_row
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    report = export_all(paths.EVAL_PREDICTIONS, paths.PREPARED,
                        {t: c.type for t, c in params.tasks.items()}, paths.PREDICTIONS,
                        paths.EXPORT_REPORT)
    print(f"predictions: {paths.PREDICTIONS}/ ({len(report['files'])} files)")
    write_own_row(paths.PARAMS, paths.EVAL_METRICS, paths.LEADERBOARD_ROW)
    print(f"leaderboard row: {paths.LEADERBOARD_ROW}")


if __name__ == "__main__":
    run_stage(main)
