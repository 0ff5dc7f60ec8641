"""DVC stage: multitask fine-tuning -> models/multitask (best dev epoch), DVCLive metrics."""

from pipeline.config import load_params
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    # After validation: a bad param fails in half a second, before torch and transformers load
    # (seven seconds of CPU).
    from pipeline.train.run import train

    result = train(params, paths.TOKENIZED, paths.MLM, paths.MODEL, paths.TRAIN_LIVE,
                   paths.TRAIN_CHECKPOINTS)
    print(f"trained {result.steps} steps in {result.seconds:.0f}s; best epoch "
          f"{result.best_epoch}, dev overall {result.best_dev['overall']:.4f}; saved {paths.MODEL}")


if __name__ == "__main__":
    run_stage(main)
