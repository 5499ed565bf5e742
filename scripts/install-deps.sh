#!/usr/bin/env bash
# Installs the Debian packages Argon needs to build, run and test. Idempotent: installs only what is
# missing, so `make run` / `make test` on a machine that has everything costs one dpkg query.
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libpq-dev libssl-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-client-15
  postgresql-server-dev-15  # headers for argon_roles, the library argond preloads into computes
  xfsprogs e2fsprogs util-linux procps iproute2 ca-certificates curl python3
  pgbouncer  # only the proxy benchmark runs it, beside the proxy
  # Resolves <endpoint-id>.localhost to loopback, so the host names in connection strings work
  # without DNS (its package adds "myhostname" to /etc/nsswitch.conf).
  libnss-myhostname
)
# Only for the tests (make test): the compatibility tests drive Neon's npm clients (the machine's
# Node.js when it has one, Debian's otherwise), the fuzz targets need clang's libFuzzer, and the
# format check clang-format 14.
if [[ "${ARGON_TEST_DEPS:-0}" == 1 ]]; then
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  packages+=(clang-16 libclang-rt-16-dev clang-format-14)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run 'sudo $0' or install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
