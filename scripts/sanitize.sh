#!/usr/bin/env bash
# Builds Argon with sanitizers and runs tests against that build; part of `make test`.
#   scripts/sanitize.sh address   ASan + UBSan (build-asan): the unit and integration suites
#   scripts/sanitize.sh thread    TSan (build-tsan): argond, under the integration tests that drive
#                                 the operations engine and the proxy (argond's threads); the tests
#                                 themselves are the normal build's (make build first)
# Every process of the run (test binaries, argond, the CLI) writes its sanitizer reports under
# build-*/sanitizer-reports; the run fails if any report is there, even one from an argond whose
# exit no test looked at.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread}
case "$kind" in
  address)
    dir=build-asan
    sanitize=address,undefined
    targets=(argon_unit_tests argon_integration_tests)
    select=(-L '^(unit|integration)') ;;
  thread)
    dir=build-tsan
    sanitize=thread
    # argond's I/O threads, the engine's workers and the proxy's sessions all run in these.
    targets=(argond)
    # (Each argond fork costs far more under TSan, so the slower snapshot suites stay out.)
    select=(-R '^(ProxyTest|ProxyLoadTest|HttpHostileTest|PlatformTest|SoakTest|OperationLanesTest|ApiThreadsTest|SnapshotTest\.NoConnectionReachesTheOldData|SnapshotTest\.PointInTimeUnderWrites|SnapshotTest\.SettlingAfterTheOperation|HistoryWindowTest|HistoryTest\.ABranchRestoredToItsOwnPast)') ;;
  *) echo "sanitize: unknown kind $kind (address or thread)" >&2; exit 2 ;;
esac

# -O1 -g1: reports keep file and line, and the Beast-heavy files compile in a third of the time
# they take at -O2 -g under instrumentation. No -DNDEBUG: assertions are on here.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DARGON_SANITIZE="$sanitize" >/dev/null
cmake --build "$dir" --target "${targets[@]}"

reports=$PWD/$dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
supp=$PWD/tests/sanitizers
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1"
export TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$supp/tsan.supp:second_deadlock_stack=1"
# The random-kill rounds are the slow part and mostly time spent in PostgreSQL; the normal build
# runs the full count.
export ARGON_CRASH_ROUNDS=${ARGON_CRASH_ROUNDS:-30}
export ARGON_SOAK_SECONDS=${ARGON_SOAK_SECONDS:-60}
# Past points checked across kills (tests/integration/history_test.cc): each is a branch with a
# compute; the normal build checks 30.
export ARGON_HISTORY_POINTS=${ARGON_HISTORY_POINTS:-10}

status=0
tests=$dir
if [[ $kind == thread ]]; then
  export ARGON_ARGOND=$PWD/$dir/bin/argond
  tests=build
fi
(cd "$tests" && ctest --output-on-failure --timeout 900 -j"$(nproc)" "${select[@]}") || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize ($sanitize): reports written during the run:" >&2
  for f in "$reports"/*; do
    echo "==== $f" >&2
    head -c 20000 "$f" >&2
  done
  status=1
fi
exit "$status"
