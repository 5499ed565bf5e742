#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on its
# checked-in corpus. libFuzzer needs clang; the rest of Argon builds with g++. New inputs go to a
# temporary directory; copy interesting ones into tests/fuzz/corpus/<target>/ by hand.
#   scripts/fuzz.sh [pgwire] [api_input] [router] [http_request]   (default: all); FUZZ_SECONDS (default 60) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${FUZZ_CXX:-clang++-16}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found; run scripts/install-deps.sh" >&2; exit 1; }
out=build-fuzz
mkdir -p "$out"
# clang 16 implements what libstdc++ 12's <expected> needs but still reports __cpp_concepts 201907,
# which hides std::expected; raising the macro for this build only makes it visible.
flags=(-std=c++2b -Wno-builtin-macro-redefined -U__cpp_concepts -D__cpp_concepts=202002L -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc)

build() {
  case "$1" in
    pgwire)
      "$CXX" "${flags[@]}" tests/fuzz/pgwire_fuzz.cc src/pgwire/startup_packet.cc src/pgwire/message_framer.cc \
        src/pgwire/messages.cc src/pgwire/scram.cc src/proxy/endpoint_hint.cc src/common/error.cc src/common/random.cc \
        -lfmt -lcrypto -o "$out/pgwire_fuzz" ;;
    api_input)
      "$CXX" "${flags[@]}" tests/fuzz/api_input_fuzz.cc src/api/input.cc src/common/clock.cc src/common/error.cc \
        -lboost_json -lboost_url -lfmt -o "$out/api_input_fuzz" ;;
    http_request)
      "$CXX" "${flags[@]}" tests/fuzz/http_request_fuzz.cc src/proxy/http_request.cc src/proxy/endpoint_hint.cc \
        src/common/error.cc -lboost_json -lboost_url -lfmt -o "$out/http_request_fuzz" ;;
    router)
      "$CXX" "${flags[@]}" tests/fuzz/router_fuzz.cc src/api/router.cc src/common/error.cc \
        -lboost_url -lfmt -o "$out/router_fuzz" ;;
    *) echo "fuzz: unknown target $1" >&2; return 2 ;;
  esac
}

status=0
for target in "${@:-pgwire api_input router http_request}"; do
  for t in $target; do
    build "$t"
    work=$(mktemp -d)
    echo "fuzz: $t for ${FUZZ_SECONDS:-60} s"
    set +e
    "$out/${t}_fuzz" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      "$work" "tests/fuzz/corpus/$t" 2>&1 | grep -E '^(stat::|Done|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY|INFO: Running)|runtime error'
    rc=${PIPESTATUS[0]}  # grep only trims the output; the fuzzer's own exit status decides
    set -e
    rm -rf "$work"
    ((rc == 0)) || status=$rc
  done
done
exit "$status"
