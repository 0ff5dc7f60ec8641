"""DVC stage: raw task files (or the synthetic generator) -> data/prepared."""

from pipeline.config import load_params
from pipeline.data.prepare import prepare
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    # A relative data.dir is taken from the folder of params.yaml (the repo root).
    summary = prepare(params, paths.PREPARED, root=paths.PARAMS.parent)
    print(f"prepared {paths.PREPARED}: rows {summary.rows}; rejected {summary.rejected} "
          f"(see {paths.PREPARED}/rejected.parquet), recovered {summary.recovered}; "
          f"train rows dropped {summary.dropped} (see {paths.PREPARED}/dropped.parquet)")


if __name__ == "__main__":
    run_stage(main)
