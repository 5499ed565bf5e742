#!/usr/bin/env bash
# `make test`: the format check (scripts/format.sh), every test of the normal build (unit, integration, compat, fuzz; integration tests
# start real argond and PostgreSQL, the reflink tests loop-mount an XFS image and need root), then
# the unit and integration suites again under ASan + UBSan, and argond under TSan through the tests
# of the operations engine and the proxy (scripts/sanitize.sh). ARGON_SANITIZE=0 skips the last two.
# ctest runs the tests -j$(nproc); those registered RUN_SERIAL (tests/CMakeLists.txt: the load, soak,
# random-kill, disk and compat tests) run alone.
# The last lines say which stages failed and which tests, as a CI log is often read from its end.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
summary=()

# run_stage NAME CTEST_DIR COMMAND...: runs COMMAND; if it fails, notes the tests ctest saw fail
# in CTEST_DIR (ctest rewrites that list on each run, and the TSan stage runs in build too), or
# only that it failed when CTEST_DIR is "-".
run_stage() {
  local name=$1 dir=$2 failed_log="$2/Testing/Temporary/LastTestsFailed.log" failed=""
  shift 2
  [[ $dir == - ]] || rm -f "$failed_log"
  "$@" && return 0
  status=1
  if [[ $dir == - ]]; then
    summary+=("$name: failed; its output is above")
    return 0
  fi
  [[ -f $failed_log ]] && failed=$(cut -d: -f2- "$failed_log" | paste -sd' ' -)
  summary+=("$name: ${failed:-no test failed; see the build output or the sanitizer reports above}")
}
normal_tests() { (cd build && ctest --output-on-failure --timeout 900 -j"$(nproc)"); }

run_stage "format" - scripts/format.sh --check
run_stage "normal build" build normal_tests
if [[ ${ARGON_SANITIZE:-1} != 0 ]]; then
  run_stage "ASan+UBSan" build-asan scripts/sanitize.sh address
  run_stage "TSan" build scripts/sanitize.sh thread
fi
if ((status != 0)); then
  echo "make test: FAILED" >&2
  for line in "${summary[@]}"; do echo "  $line" >&2; done
fi
exit "$status"
