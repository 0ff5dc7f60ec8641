"""DVC stage: optional masked-LM further pre-training of the encoder on the train text.

``mlm.enabled: false`` writes a manifest naming the base encoder (seconds). ``true`` builds the
leak-free corpus from ``data/prepared``, trains, and writes ``models/mlm/encoder/`` for
``train`` to load, the corpus it used, and held-out loss/perplexity before and after.
"""

import shutil

from pipeline.config import load_params
from pipeline.io import atomic_path, write_json
from pipeline.mlm.run import run_mlm
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    shutil.rmtree(paths.MLM_LIVE, ignore_errors=True)  # no stale curves from an earlier run
    with atomic_path(paths.MLM) as staged:
        staged.mkdir(parents=True)
        manifest, metrics = run_mlm(params, paths.PREPARED, staged, paths.MLM_LIVE)
        write_json(staged / "manifest.json", manifest)
    write_json(paths.MLM_METRICS, metrics)


if __name__ == "__main__":
    run_stage(main)
