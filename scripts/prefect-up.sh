#!/usr/bin/env bash
# Start a local Prefect server (127.0.0.1:4200, SQLite under .prefect/) and the serve process
# that registers and runs this project's flows. Stop both with scripts/prefect-down.sh.
# Extra arguments go to `python -m pipeline.flows.serve` (e.g. --repro-cron "0 4 * * *").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source .venv/bin/activate
PORT=${PREFECT_PORT:-4200}
export PREFECT_HOME="$PWD/.prefect"
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
export PREFECT_UI_API_URL="$PREFECT_API_URL"   # the UI calls this address from the browser
mkdir -p "$PREFECT_HOME"
if [ -f "$PREFECT_HOME/server.pid" ] && kill -0 "$(cat "$PREFECT_HOME/server.pid")" 2>/dev/null; then
  echo "Prefect server already running (pid $(cat "$PREFECT_HOME/server.pid"))"
else
  setsid prefect server start --host 127.0.0.1 --port "$PORT" \
    >"$PREFECT_HOME/server.log" 2>&1 < /dev/null &
  echo $! > "$PREFECT_HOME/server.pid"
  for _ in $(seq 1 120); do
    curl -fs "$PREFECT_API_URL/health" >/dev/null 2>&1 && break
    kill -0 "$(cat "$PREFECT_HOME/server.pid")" 2>/dev/null || {
      echo "server failed to start; see $PREFECT_HOME/server.log"; exit 1; }
    sleep 1
  done
  curl -fs "$PREFECT_API_URL/health" >/dev/null || { echo "server not healthy"; exit 1; }
fi
if [ -f "$PREFECT_HOME/serve.pid" ] && kill -0 "$(cat "$PREFECT_HOME/serve.pid")" 2>/dev/null; then
  echo "serve process already running (pid $(cat "$PREFECT_HOME/serve.pid"))"
else
  setsid python -m pipeline.flows.serve --project . "$@" \
    >"$PREFECT_HOME/serve.log" 2>&1 < /dev/null &
  echo $! > "$PREFECT_HOME/serve.pid"
fi
echo "Prefect UI:  http://127.0.0.1:$PORT   (logs: $PREFECT_HOME/{server,serve}.log)"
echo "In this shell: export PREFECT_API_URL=$PREFECT_API_URL"
