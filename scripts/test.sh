#!/usr/bin/env bash
# The one command that runs every test on a fresh machine (README.md).
# It installs the outside tools the interop tests need, then runs the
# whole workspace's tests in release mode (the crash and property tests
# do real work and are slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need_apt+=(golang-golang-x-mod-dev)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} for the Go interop and sync-order tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The RFC 6962 vectors live in shared/ beside the repository; the vector
# test fails without them.
export CONSENTRY_MERKLE_VECTORS="${CONSENTRY_MERKLE_VECTORS:-$(pwd)/../shared/testdata/merkle}"

cargo test --workspace --release "$@"
