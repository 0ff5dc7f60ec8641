"""DVC stage: optional masked-LM further pre-training; writes models/mlm/manifest.json.

With ``mlm.enabled: false`` the manifest names the base encoder and ``train`` loads it.
"""

from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.io import write_json
from pipeline.stage import run_stage
from stages import paths


def main() -> None:
    params = load_params(paths.PARAMS)
    if params.mlm.enabled:
        raise UserError("mlm.enabled=true: MLM further pre-training is not available in this "
                        "version yet; set mlm.enabled=false")
    write_json(paths.MLM / "manifest.json", {
        "enabled": False, "encoder": params.encoder.name, "revision": params.encoder.revision,
        "weights_dir": None,
    })
    print(f"mlm disabled: train uses the base encoder '{params.encoder.name}'")


if __name__ == "__main__":
    run_stage(main)
