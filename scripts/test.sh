#!/usr/bin/env bash
# The test command: lint, then the whole pytest suite. Called by `make test` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

# The FHIR test server (sekmet-fhir) lives in its own venv: it pins its own fastapi/pydantic/fhir.resources.
# Created once (~12 s), re-created when .ci/fhir-server/requirements.txt changes. Tests marked `server` use
# FHIR_PTS_TEST_SERVER (that venv's python) and skip, saying why, when it is missing.
SERVER_VENV=.ci/server-venv
SERVER_REQ=.ci/fhir-server/requirements.txt
if ! cmp -s "$SERVER_REQ" "$SERVER_VENV/.requirements.txt" 2>/dev/null; then
    echo "test.sh: installing the FHIR test server into $SERVER_VENV" >&2
    if rm -rf "$SERVER_VENV" && "${PYTHON:-python3}" -m venv "$SERVER_VENV" \
        && "$SERVER_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SERVER_REQ"; then
        cp "$SERVER_REQ" "$SERVER_VENV/.requirements.txt"
    else
        echo "test.sh: WARNING: could not install the FHIR test server; server tests will be skipped" >&2
    fi
fi
if [ -x "$SERVER_VENV/bin/python" ]; then
    export FHIR_PTS_TEST_SERVER="$PWD/$SERVER_VENV/bin/python"
fi

"$BIN/ruff" check src tests
"$BIN/python" -m pytest "$@"
