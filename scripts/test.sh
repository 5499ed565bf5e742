#!/usr/bin/env bash
# `make test`: every test of the normal build (unit, integration, compat, fuzz; integration tests
# start real argond and PostgreSQL, the reflink tests loop-mount an XFS image and need root), then
# the unit and integration suites again under ASan + UBSan, and argond under TSan through the tests
# of the operations engine and the proxy (scripts/sanitize.sh). ARGON_SANITIZE=0 skips the last two.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
(cd build && ctest --output-on-failure --timeout 900 -j1) || status=$?
if [[ ${ARGON_SANITIZE:-1} != 0 ]]; then
  scripts/sanitize.sh address || status=$?
  scripts/sanitize.sh thread || status=$?
fi
exit "$status"
