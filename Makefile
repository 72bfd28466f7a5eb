# Two commands do all the set-up on a fresh machine (Python >= 3.11 and make):
#   make demo   -- synthesise the 42-patient paper cohort, run every analysis, compare with the abstract
#   make test   -- the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test lint install clean

$(BIN)/fhir-pts: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/fhir-pts

demo: install
	$(BIN)/fhir-pts demo --out $(OUT)

test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check src tests plugins benchmarks

clean:
	rm -rf $(VENV) out
