# Sourced by the run scripts: offline, quiet defaults for DVC, Prefect and Hugging Face.
export DO_NOT_TRACK=1
export DVC_NO_ANALYTICS=1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90
export TOKENIZERS_PARALLELISM=false
export HF_HUB_DISABLE_TELEMETRY=1
