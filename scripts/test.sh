#!/usr/bin/env bash
# `make test`: unit and integration tests (ctest), then the official-client compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
(cd build && ctest --output-on-failure --timeout 900 -j1) || status=1
if [[ "${ARGON_SKIP_COMPAT:-0}" != 1 ]]; then
  ARGON_WITH_NODE=1 scripts/install-deps.sh
  tests/compat/run.sh || status=1
fi
exit $status
