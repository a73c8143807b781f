# Two commands set everything up on a fresh machine: `make run` and `make test`.
# Installs are locked: requirements/*.txt pin every package with its hashes and pip installs them in
# hash-checking mode; `make lock` refreshes them from pyproject.toml (see README, "Installing").
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?=
PIP_LOCKED := $(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps
# The project itself: from this folder, no build isolation (its build tools come from the lock too).
PIP_PROJECT := $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp
UV_VENV := .venv-lock
LOCK_PY := 3.11
UV_COMPILE = $(UV_VENV)/bin/uv pip compile --quiet --universal --python-version $(LOCK_PY) --generate-hashes \
	$(if $(UPGRADE),--upgrade,)

.PHONY: install install-dev test-deps run test test-all lint format bench lock clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

## Runtime dependencies only: what `make run` needs.
$(RUNTIME_STAMP): requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(PIP_LOCKED) -r requirements/runtime.txt
	$(PIP_PROJECT)
	@touch $@

## Runtime + OpenTelemetry + the test and lint tools: what `make test` and `make lint` need.
$(DEV_STAMP): requirements/dev.txt pyproject.toml | $(BIN)/python
	$(PIP_LOCKED) -r requirements/dev.txt
	$(PIP_PROJECT)
	@touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

## Start the proxy: the local Ollama by default, or CONFIG=path/to/config.yaml
run: $(RUNTIME_STAMP)
	$(BIN)/proxyllm $(if $(CONFIG),--config $(CONFIG),)

## The dashboard's browser tests drive Debian's Chromium (installed here when missing and we are root);
## the Codex CLI test runs @openai/codex from .codex-npm, the Claude Code test @anthropic-ai/claude-code
## from .claude-npm (installed here when npm exists).
CODEX_VERSION ?= 0.171.0
CLAUDE_CODE_VERSION ?= 2.1.332
test-deps:
	@if command -v npm >/dev/null 2>&1 && [ ! -x .codex-npm/node_modules/.bin/codex ]; then \
	  echo "installing @openai/codex $(CODEX_VERSION) for the Codex CLI test"; \
	  npm install --silent --no-audit --no-fund --prefix .codex-npm @openai/codex@$(CODEX_VERSION) >/dev/null \
	    || echo "could not install @openai/codex; its test will be skipped"; \
	fi
	@if command -v npm >/dev/null 2>&1 && [ ! -x .claude-npm/node_modules/.bin/claude ]; then \
	  echo "installing @anthropic-ai/claude-code $(CLAUDE_CODE_VERSION) for the Claude Code test"; \
	  npm install --silent --no-audit --no-fund --prefix .claude-npm @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) \
	    >/dev/null || echo "could not install @anthropic-ai/claude-code; its test will be skipped"; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the dashboard tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null; \
	fi

## make test: the suite on several workers; the slow end-to-end tests (real CLIs, Chromium, a fresh clone,
## load, fuzzing: marked `slow`) run when CI=true. make test-all runs everything anywhere.
## Bytecode caches stay on for the suite even where PYTHONDONTWRITEBYTECODE is set: without them every
## worker and every proxy subprocess recompiles the project and pytest re-rewrites each test module's
## asserts (about 3 s of collection per worker, measured).
TEST_WORKERS ?= 4
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest
test: $(DEV_STAMP) test-deps
	$(PYTEST) -q -p no:cacheprovider -n $(TEST_WORKERS) $(if $(CI),,-m "not slow")

test-all: $(DEV_STAMP) test-deps
	$(PYTEST) -q -p no:cacheprovider -n $(TEST_WORKERS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check proxyllm tests bench
	$(BIN)/mypy proxyllm

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix proxyllm tests bench
	$(BIN)/ruff format proxyllm tests bench

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run

## Refresh the locks after pyproject.toml changed: pins already locked are kept, new packages get the
## newest release on PyPI that fits; `make lock UPGRADE=1` moves everything to the newest. uv resolves
## for every platform and Python >= 3.11 at once; the runtime and otel locks keep the dev lock's versions.
lock:
	@test -x $(UV_VENV)/bin/python || $(PY) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/uv.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in -c requirements/dev.txt -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra otel -c requirements/dev.txt -o requirements/otel.txt

clean:
	rm -rf $(VENV) $(UV_VENV) .mypy_cache .ruff_cache .pytest_cache
