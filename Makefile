# The README's quick start is `make demo` and `make test`; CI runs `CI=true make test` (.ci/run).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo serve test lint format openapi lock clean bench ui

# The C sources too: an editable install compiles the extensions once, so a change rebuilds them.
$(STAMP): pyproject.toml requirements.lock app/ingest/_otlp_wire.c app/edge/_sketch.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/meshstitch demo

serve: install
	$(BIN)/meshstitch serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: install
	$(BIN)/meshstitch openapi --output openapi.yaml

# Rebuild the vendored browser assets (app/ui/static/vendor/) from frontend/package-lock.json.
ui:
	cd frontend && npm ci --ignore-scripts --no-audit --no-fund && node build.mjs

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^meshstitch' > requirements.lock

# Benchmarks print a table and the command to rerun them; they are never run by `make test`.
bench: install
	$(BIN)/python bench/ingest.py --stages
	$(BIN)/python -m bench.poll
	$(BIN)/python -m bench.correlate
	$(BIN)/python bench/write.py
	$(BIN)/python bench/graph.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache build
	find app -name "*.so" -delete
