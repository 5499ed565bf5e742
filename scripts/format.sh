#!/usr/bin/env bash
# The C++ sources against the checked-in .clang-format: `scripts/format.sh` rewrites them in place
# (make format), `scripts/format.sh --check` lists the files that differ and fails (make test).
# clang-format 14 exactly, as other versions break lines differently.
set -euo pipefail
cd "$(dirname "$0")/.."
tool=$(command -v clang-format-14 || true)
if [[ -z $tool ]]; then
  echo "format: clang-format-14 is missing; run 'ARGON_TEST_DEPS=1 scripts/install-deps.sh'" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [[ ${1:-} != --check ]]; then
  "$tool" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$tool" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "format: ${#bad[@]} file(s) differ from .clang-format; run 'make format':" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
