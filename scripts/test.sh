#!/usr/bin/env bash
# The test command: lint, then the whole pytest suite. Called by `make test` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
"$BIN/ruff" check src tests
"$BIN/python" -m pytest "$@"
