#!/usr/bin/env bash
# Create .venv and install the project (with test extras when asked): `scripts/setup.sh [--test]`.
# The runtime dependencies are held to the versions in requirements.lock, the ones the Docker
# image installs, so that the tests run what ships.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
# As constraints, without the hashes: pip allows no hashes beside an editable install.
sed -e '/^[[:space:]]*--hash/d' -e '/^[[:space:]]*#/d' -e 's/[[:space:]]*\\$//' \
  requirements.lock >"$constraints"
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install --quiet -c "$constraints" -e '.[test]'
else
  .venv/bin/python -m pip install --quiet -c "$constraints" -e .
fi
