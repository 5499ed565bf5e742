#!/usr/bin/env bash
# `make run` as a new user meets it (scripts/run.sh): with its port taken by another server, and
# with a data directory argond refuses. Each time the script must stop with the reason, never go on
# talking to a server it did not start. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ARGOND=${ARGOND:?set ARGOND to the argond binary}
export ARGOND
tmp=$(mktemp -d)
holder_pid=""
cleanup() {
  [[ -n $holder_pid ]] && kill "$holder_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
check() {  # check NAME EXPECTED_TEXT OUTPUT_FILE STATUS
  if [[ $4 -ne 0 ]] && grep -qF -- "$2" "$3"; then
    passed=$((passed + 1)); echo "ok   $1"
  else
    failed=$((failed + 1)); echo "FAIL $1 (status $4; expected \"$2\" in:)"; sed 's/^/     /' "$3"
  fi
}

# 1. Another server holds the API port: say so and by what, and start nothing.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
time.sleep(120)' >"$tmp/port" &
holder_pid=$!
for _ in $(seq 1 100); do [[ -s $tmp/port ]] && break; sleep 0.05; done
port=$(cat "$tmp/port")
DATA_DIR=$tmp/taken ARGON_LISTEN=127.0.0.1:$port ARGON_PROXY_LISTEN=127.0.0.1:0 \
  timeout 60 scripts/run.sh >"$tmp/out1" 2>&1 </dev/null
check "port taken: names the holder" "port $port (the API address 127.0.0.1:$port) is already in use by python3" "$tmp/out1" $?
if [[ -e $tmp/taken/catalog.db ]]; then
  failed=$((failed + 1)); echo "FAIL port taken: argond was started anyway"
fi
kill "$holder_pid" 2>/dev/null; wait "$holder_pid" 2>/dev/null; holder_pid=""

# 2. argond exits at start: its own message reaches the user, not a later step's error.
if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
  mkdir -m 0700 "$tmp/private"
  DATA_DIR=$tmp/private/data ARGON_LISTEN=127.0.0.1:0 ARGON_PROXY_LISTEN=127.0.0.1:0 \
    timeout 60 scripts/run.sh >"$tmp/out2" 2>&1 </dev/null
  status=$?
  check "argond exits: its message is shown" "is not searchable by others" "$tmp/out2" $status
  check "argond exits: the script says it exited" "argond exited" "$tmp/out2" $status
else
  echo "skip argond exits: needs root and a postgres user (argond checks the Postgres user's access)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
