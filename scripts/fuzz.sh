#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on its
# checked-in corpus. libFuzzer needs clang; the rest of Argon builds with g++. New inputs go to a
# temporary directory; copy interesting ones into tests/fuzz/corpus/ by hand.
#   FUZZ_SECONDS (default 60) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${FUZZ_CXX:-clang++-16}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found; run scripts/install-deps.sh" >&2; exit 1; }
out=build-fuzz
mkdir -p "$out"
# clang 16 implements what libstdc++ 12's <expected> needs but still reports __cpp_concepts 201907,
# which hides std::expected; raising the macro for this build only makes it visible.
flags=(-std=c++2b -Wno-builtin-macro-redefined -U__cpp_concepts -D__cpp_concepts=202002L -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc)
sources=(src/pgwire/startup_packet.cc src/pgwire/message_framer.cc src/pgwire/messages.cc src/pgwire/scram.cc
         src/proxy/endpoint_hint.cc src/common/error.cc src/common/random.cc)
"$CXX" "${flags[@]}" tests/fuzz/pgwire_fuzz.cc "${sources[@]}" -lfmt -lcrypto -o "$out/pgwire_fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$out/pgwire_fuzz" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  "$work" tests/fuzz/corpus/pgwire 2>&1 | grep -E '^(stat::|Done|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY|INFO: Running)|runtime error' || true
# grep above only trims the output; the fuzzer's own exit status decides.
exit "${PIPESTATUS[0]}"
