#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install, start services, lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# PostgreSQL and Redis: started when down, installed from Debian's packages when missing (as root).
scripts/services.sh
# The auditor-view browser test drives Debian's chromium; install it when missing.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing chromium for the browser test" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
  fi
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$status"
