#!/usr/bin/env bash
# Install and start the service on its embedded defaults: bundled config/default.yaml, SQLite audit
# store in the working directory, bound to 127.0.0.1:8080. Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/psychopharm-cds serve "$@"
