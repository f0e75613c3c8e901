#!/usr/bin/env bash
# Non-Python tools the tests drive for real: Chromium (pages) and, once package.json exists,
# the npm packages (anvil, solc). Fails loudly rather than letting tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium (Debian package) for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is required for the browser tests: install the 'chromium' package." >&2
    exit 1
  fi
fi

if [ -f package-lock.json ]; then
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    command -v npm >/dev/null || { echo "Node.js and npm are required (anvil, solc)." >&2; exit 1; }
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  fi
fi
