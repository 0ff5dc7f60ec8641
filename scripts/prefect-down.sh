#!/usr/bin/env bash
# Stop the serve process, then the Prefect server, started by scripts/prefect-up.sh (pid files
# in .prefect/). SIGINT first so serve pauses its schedules; SIGKILL after 30 s.
set -uo pipefail
cd "$(dirname "$0")/.."
for name in serve server; do
  pidfile=".prefect/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT -- "-$pid" 2>/dev/null || kill -INT "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; }
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
