# Two commands for a fresh machine (see README):
#   make chat   set up, index corpus/, serve the web chat on http://127.0.0.1:7860
#   make test   set up (with test and LLM extras, and Debian's Chromium) and run every test
# Everything is installed with pip into .venv; torch is pinned in pyproject.toml to the
# CPU build that lies on this kind of machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: chat test setup setup-test lint bench clean

chat: $(VENV)/.base
	$(BIN)/policy-qa serve --corpus corpus

test: $(VENV)/.test chromium
	$(BIN)/ruff check src tests benchmarks research
	$(BIN)/ruff format --check src tests benchmarks research
	$(BIN)/mypy src benchmarks research
	$(BIN)/pytest

setup: $(VENV)/.base
setup-test: $(VENV)/.test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The llm extra brings the answerability check (README "Refusal"); llama-cpp-python compiles
# once (3-6 min), and where it cannot the chat still runs, refusing on evidence scores alone.
$(VENV)/.base: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[llm]' || { \
	  echo "policy-qa: the llm extra did not install; the chat runs without the answerability check" >&2; \
	  $(BIN)/pip install --quiet -e .; }
	touch $@

$(VENV)/.test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[test,llm]'
	touch $@ $(VENV)/.base

# Browser tests drive Debian's Chromium; Playwright's own browser download cannot work here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks research && $(BIN)/ruff format --check src tests benchmarks research && $(BIN)/mypy src benchmarks research

bench: $(VENV)/.test
	$(BIN)/python scripts/bench_retrieval.py

clean:
	rm -rf $(VENV) .policy-qa test-artifacts
