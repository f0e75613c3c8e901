#!/usr/bin/env bash
# Non-Python tools the service and tests drive for real. Fails loudly rather than letting
# anything skip.
#   scripts/install-tools.sh node      npm packages: anvil (local chain), solc (contract compiler)
#   scripts/install-tools.sh browser   Chromium for the page tests
set -euo pipefail
cd "$(dirname "$0")/.."

install_node() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "Node.js and npm are required (anvil, solc)." >&2; exit 1; }
    # --ignore-scripts: anvil's binary comes from its platform package; its postinstall would
    # only try to download one.
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  fi
}

install_browser() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium (Debian package) for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is required for the browser tests: install the 'chromium' package." >&2
    exit 1
  fi
}

for what in "${@:-node browser}"; do
  for item in $what; do
    case "$item" in
      node) install_node ;;
      browser) install_browser ;;
      *) echo "unknown tool: $item" >&2; exit 2 ;;
    esac
  done
done
