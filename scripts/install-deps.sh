#!/usr/bin/env bash
# Installs the Debian 12 packages resortd needs, only those missing.
# Usage: scripts/install-deps.sh [build|test|bench|all]   (default: build)
# build: compile and run; test: + unit/API/fuzz/packaging tests; bench: + wrk, nginx.
# test also runs npm ci in tests/oidc (the test OpenID provider) when its node_modules is stale.
set -euo pipefail
what=${1:-build}
build=(make gcc pkg-config liblmdb-dev lmdb-utils libevent-dev libssl-dev libcjson-dev libsqlite3-dev)
test=(libcmocka-dev libjwt-dev python3 python3-pytest python3-requests python3-jsonschema python3-yaml
      clang-14 libclang-rt-14-dev debhelper dh-sequence-installsysusers fakeroot dpkg-dev lintian rpm
      systemd curl procps clang-format openssl)
bench=(wrk nginx-light python3 postgresql-15 redis-server)
case "$what" in
  build) want=("${build[@]}") ;;
  test) want=("${build[@]}" "${test[@]}") ;;
  bench) want=("${build[@]}" "${bench[@]}") ;;
  all) want=("${build[@]}" "${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac
oidc=
if [ "$what" = test ] || [ "$what" = all ]; then
  oidc=$(cd "$(dirname "$0")/../tests/oidc" && pwd)
  # Node.js from Debian unless a node is already on PATH (e.g. NodeSource's, which bundles npm).
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
fi
missing=()
for p in "${want[@]}"; do
  # dh-sequence-* are virtual packages: dpkg -s does not know them, so ask apt whether
  # something providing them is installed.
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    if [[ $p == dh-sequence-* ]] && dpkg-query -W -f='${Provides}\n' 2>/dev/null | grep -qw "$p"; then
      continue
    fi
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# npm writes node_modules/.package-lock.json on every install: older than the lock = stale.
if [ -n "$oidc" ] && [ "$oidc/package-lock.json" -nt "$oidc/node_modules/.package-lock.json" ]; then
  (cd "$oidc" && npm ci --no-audit --no-fund)
fi
