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
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# certutil puts the test CA in the browser's certificate store (NSS) for
# the portal's HTTPS test.
command -v certutil >/dev/null 2>&1 || need_apt+=(libnss3-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} for the Go interop, sync-order and browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The RFC 6962 vectors live in shared/ beside the repository; the vector
# test fails without them.
export CONSENTRY_MERKLE_VECTORS="${CONSENTRY_MERKLE_VECTORS:-$(pwd)/../shared/testdata/merkle}"

# axe-core for the portal's accessibility tests, and the npm releases the
# portal's vendored libraries are compared with, pinned by
# tests/browser/package-lock.json; the tests fail without them.
for f in axe-core/axe.min.js @noble/ed25519/index.js qrcode-generator/dist/qrcode.js; do
  if [ ! -f "tests/browser/node_modules/$f" ]; then
    echo "installing the browser tests' npm packages"
    (cd tests/browser && npm ci --silent --no-audit --no-fund)
    break
  fi
done
export CONSENTRY_AXE_JS="${CONSENTRY_AXE_JS:-$(pwd)/tests/browser/node_modules/axe-core/axe.min.js}"
export CONSENTRY_CHROMIUM="${CONSENTRY_CHROMIUM:-$(command -v chromium)}"
export CONSENTRY_CHROMEDRIVER="${CONSENTRY_CHROMEDRIVER:-$(command -v chromedriver)}"
export CONSENTRY_CERTUTIL="${CONSENTRY_CERTUTIL:-$(command -v certutil)}"

cargo test --workspace --release "$@"
