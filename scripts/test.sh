#!/usr/bin/env bash
# `make test`: unit and integration tests through ctest (integration tests start real argond and
# PostgreSQL; the reflink tests loop-mount an XFS image and need root).
set -euo pipefail
cd "$(dirname "$0")/.."
cd build
ctest --output-on-failure --timeout 900 -j1
