#!/usr/bin/env bash
# `make run`: starts argond with embedded defaults and prints what a user needs to connect.
# It talks only to the argond it started: readiness is that process's own "ARGOND_API_URL=" line,
# never an answer on the port (which another server may hold), and if argond exits, its own
# message is what the user sees.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-$PWD/.argon}
LISTEN=${ARGON_LISTEN:-127.0.0.1:8420}
PROXY_LISTEN=${ARGON_PROXY_LISTEN:-127.0.0.1:5420}
ARGOND=${ARGOND:-build/bin/argond}

# port_holder PORT: what listens on TCP PORT ("name (pid N)"), empty when nothing does.
port_holder() {
  ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1 | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p;t;s/.*/another process/p'
}
for pair in "API:$LISTEN:ARGON_LISTEN" "proxy:$PROXY_LISTEN:ARGON_PROXY_LISTEN"; do
  IFS=: read -r what host port var <<<"$pair"
  if [[ $port != 0 ]] && holder=$(port_holder "$port") && [[ -n $holder ]]; then
    echo "make run: port $port (the $what address $host:$port) is already in use by $holder." >&2
    echo "  Stop it, or choose another address: $var=$host:<port> make run" >&2
    exit 1
  fi
done

mkdir -p "$DATA_DIR"
log="$DATA_DIR/argond.stdout"
: >"$log"
"$ARGOND" --data-dir "$DATA_DIR" --listen "$LISTEN" --proxy-listen "$PROXY_LISTEN" "$@" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM

api=""
for _ in $(seq 1 600); do
  api=$(sed -n 's/^ARGOND_API_URL=//p' "$log" | tail -n 1)
  [[ -n $api ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" && rc=0 || rc=$?
    echo "make run: argond exited (status $rc) before it was ready. Its last words:" >&2
    grep -v '^ARGOND_' "$log" | tail -n 20 | sed 's/^/  /' >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z $api ]]; then
  echo "make run: argond (pid $pid) did not report ready within 60 s; its log is $log" >&2
  kill -TERM "$pid" 2>/dev/null || true
  exit 1
fi

# From here on every request goes to the address argond itself printed.
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
# With argond's own authority (no --proxy-tls-cert), the line that makes clients trust it.
trust=""
ca="$DATA_DIR/tls/ca.crt"
if [[ -f $ca && " $* " != *" --proxy-tls-cert"* ]]; then
  trust="
  Trust the proxy's certificate (Node.js, Neon's serverless driver):
    export NODE_EXTRA_CA_CERTS=$ca
  (libpq: sslmode=verify-full&sslrootcert=$ca in place of sslmode=require)
"
fi
cat <<INFO

  Argon is running (pid $pid, data in $DATA_DIR, log $DATA_DIR/logs/argond.log)

  API base URL : $api
  API key      : $key
  Project      : $project  (branch $branch, endpoint $endpoint)

  psql '$uri'
$trust
  Try the Neon CLI:  npx neonctl projects list --api-host $api --api-key $key --no-analytics
  Stop with Ctrl-C.
INFO
wait $pid
