#!/usr/bin/env bash
# `make run`: starts argond with embedded defaults and prints what a user needs to connect.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-$PWD/.argon}
LISTEN=${ARGON_LISTEN:-127.0.0.1:8420}
mkdir -p "$DATA_DIR"
log="$DATA_DIR/argond.stdout"
build/bin/argond --data-dir "$DATA_DIR" --listen "$LISTEN" "$@" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 300); do
  if curl -sf "http://$LISTEN/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $pid 2>/dev/null; then cat "$log" >&2; echo "argond failed to start" >&2; exit 1; fi
  sleep 0.2
done
api="http://$LISTEN/api/v2"
key=${ARGON_API_KEY:-$(cat "$DATA_DIR/api-key")}
auth="Authorization: Bearer $key"
project=$(curl -sf "$api/projects?limit=1" -H "$auth" | python3 -c 'import json,sys; p=json.load(sys.stdin)["projects"]; print(p[0]["id"] if p else "")')
if [[ -z "$project" ]]; then
  project=$(curl -sf -X POST "$api/projects" -H "$auth" -H 'Content-Type: application/json' \
    -d '{"project":{"name":"first"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["project"]["id"])')
fi
# Wait for the project's operations, then find the default branch and its endpoint.
for _ in $(seq 1 300); do
  pending=$(curl -sf "$api/projects/$project/operations?limit=100" -H "$auth" | python3 -c \
    'import json,sys; print(sum(o["status"] in ("scheduling","running") for o in json.load(sys.stdin)["operations"]))')
  [[ "$pending" == 0 ]] && break
  sleep 0.2
done
read -r branch endpoint < <(curl -sf "$api/projects/$project/endpoints" -H "$auth" | python3 -c \
  'import json,sys; e=json.load(sys.stdin)["endpoints"][0]; print(e["branch_id"], e["id"])')
# The same string Neon's API gives; it goes through argond's proxy, which wakes the compute.
uri=$(curl -sf "$api/projects/$project/connection_uri?database_name=neondb&role_name=neondb_owner" -H "$auth" | \
  python3 -c 'import json,sys; print(json.load(sys.stdin)["uri"])')
cat <<INFO

  Argon is running (pid $pid, data in $DATA_DIR, log $DATA_DIR/logs/argond.log)

  API base URL : $api
  API key      : $key
  Project      : $project  (branch $branch, endpoint $endpoint)

  psql '$uri'

  Try the Neon CLI:  npx neonctl projects list --api-host $api --api-key $key --no-analytics
  Stop with Ctrl-C.
INFO
wait $pid
