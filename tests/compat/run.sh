#!/usr/bin/env bash
# Compatibility tests: Neon's official clients (neonctl, @neondatabase/api-client), installed from
# npm at the versions pinned in package-lock.json, driven against a private argond ($ARGOND).
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "compat: node not found; run scripts/install-deps.sh" >&2; exit 1; }
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "compat: neonctl 5 needs Node.js >= 20.19; this machine has $(node --version)" >&2
  exit 1
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
