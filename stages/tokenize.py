"""DVC stage: data/prepared -> data/tokenized (int32 token lists in Parquet)."""

from pipeline.config import load_params
from pipeline.data.tokenize import tokenize_all
from pipeline.model.stage_tokenizer import load_stage_tokenizer
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    tok = load_stage_tokenizer(params.encoder)
    counts = tokenize_all(paths.PREPARED, paths.TOKENIZED, params.tasks, tok, params.tokenize,
                          params.encoder.name)
    print(f"tokenized {paths.TOKENIZED}: {counts}")


if __name__ == "__main__":
    run_stage(main)
