# Two commands set everything up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?=

.PHONY: install test-deps run test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Start the proxy: the local Ollama by default, or CONFIG=path/to/config.yaml
run: $(STAMP)
	$(BIN)/proxyllm $(if $(CONFIG),--config $(CONFIG),)

## The dashboard's browser tests drive Debian's Chromium (installed here when missing and we are root);
## the Codex CLI test runs @openai/codex from .codex-npm (installed here when npm exists).
CODEX_VERSION ?= 0.171.0
test-deps:
	@if command -v npm >/dev/null 2>&1 && [ ! -x .codex-npm/node_modules/.bin/codex ]; then \
	  echo "installing @openai/codex $(CODEX_VERSION) for the Codex CLI test"; \
	  npm install --silent --no-audit --no-fund --prefix .codex-npm @openai/codex@$(CODEX_VERSION) >/dev/null \
	    || echo "could not install @openai/codex; its test will be skipped"; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the dashboard tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null; \
	fi

test: $(STAMP) test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check proxyllm tests bench
	$(BIN)/mypy proxyllm

format: $(STAMP)
	$(BIN)/ruff check --fix proxyllm tests bench
	$(BIN)/ruff format proxyllm tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
