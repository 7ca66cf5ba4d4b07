# Commands for a fresh machine (see README):
#   make chat         set up, index corpus/, serve the web chat on http://127.0.0.1:7860
#   make chat-light   the same chat from the package alone, the answerability check off: nothing
#                     compiled, no Qwen (docs/decisions/094-light-path.md)
#   make test         set up (with test and LLM extras, and Debian's Chromium) and run every test
# Everything is installed with pip into .venv, constrained by constraints.txt (torch pinned to
# the CPU build that lies on this kind of machine); pyproject.toml declares lower bounds only
# (docs/decisions/090-install-like-a-python-package.md).
#
# llama-cpp-python is compiled by this Makefile, portably (AVX2, runs on any x86-64 CPU that
# has it), once per machine into a wheel folder in the user's cache keyed by its version and
# flags, and installed from that file before anything else can bring in another build: pip's
# own wheel cache may hold a native build from an earlier install, and a native build crashes
# on AMX CPUs (docs/decisions/050-portable-llama-build.md). `make chat LLAMA_BUILD=native`
# opts into a build tuned to this CPU with the AMX path left out.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP_INSTALL := $(BIN)/pip install --quiet -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

LLAMA_VERSION := 0.3.36
LLAMA_BUILD ?= portable
ifeq ($(LLAMA_BUILD),portable)
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_CFLAGS :=
LLAMA_CPU :=
else ifeq ($(LLAMA_BUILD),native)
LLAMA_CMAKE := -DGGML_NATIVE=ON
LLAMA_CFLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
# A native build fits only the CPU it was built on: its key includes the CPU's features.
LLAMA_CPU := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
else
$(error LLAMA_BUILD must be portable or native, not $(LLAMA_BUILD))
endif
CACHE_HOME := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
LLAMA_KEY := $(shell printf '%s|%s|%s|%s' '$(LLAMA_VERSION)' '$(LLAMA_CMAKE)' '$(LLAMA_CFLAGS)' \
	'$(LLAMA_CPU)' | sha256sum | cut -c1-12)
WHEELS := $(CACHE_HOME)/policy-qa/wheels
LLAMA_WHEELS := $(WHEELS)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_BUILD)-$(LLAMA_KEY)
LLAMA := $(VENV)/.llama-$(LLAMA_BUILD)-$(LLAMA_KEY)
BASE := $(VENV)/.base-$(LLAMA_BUILD)-$(LLAMA_KEY)
TEST := $(VENV)/.test-$(LLAMA_BUILD)-$(LLAMA_KEY)
LIGHT := $(VENV)/.light

.PHONY: chat chat-light test setup setup-test llama lint bench clean

chat: $(BASE)
	$(BIN)/policy-qa serve --corpus corpus

# The package alone, never the llm extra, and the check off even in a venv that has it: no
# llama.cpp build, no 1 GB Qwen to join and load (docs/decisions/094-light-path.md).
chat-light: $(LIGHT)
	$(BIN)/policy-qa serve --corpus corpus --judge off

test: $(TEST) chromium
	$(BIN)/ruff check src tests benchmarks research
	$(BIN)/ruff format --check src tests benchmarks research
	$(BIN)/mypy src benchmarks research
	$(BIN)/pytest

setup: $(BASE)
setup-test: $(TEST)
llama: $(LLAMA)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Built from source with --no-cache-dir (pip's wheel cache is neither read nor written) into a
# temporary folder, then moved into place: a failed build leaves no wheel behind. Installed
# with --force-reinstall --no-deps, so it replaces whatever build the venv held.
$(LLAMA): | $(VENV)/bin/python
	@mkdir -p "$(WHEELS)"; \
	whl=$$(ls "$(LLAMA_WHEELS)"/llama_cpp_python-$(LLAMA_VERSION)-*.whl 2>/dev/null | head -n1); \
	if [ -z "$$whl" ]; then \
	  echo "policy-qa: building llama-cpp-python $(LLAMA_VERSION), $(LLAMA_BUILD) ($(LLAMA_CMAKE)), once for this machine (3-15 min)" >&2; \
	  tmp=$$(mktemp -d "$(WHEELS)/.build-XXXXXX"); \
	  if CMAKE_ARGS="$(LLAMA_CMAKE)" CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" \
	      $(BIN)/pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
	      --wheel-dir "$$tmp" llama-cpp-python==$(LLAMA_VERSION); then \
	    mkdir -p "$(LLAMA_WHEELS)" && mv "$$tmp"/llama_cpp_python-*.whl "$(LLAMA_WHEELS)/"; \
	  fi; \
	  rm -rf "$$tmp"; \
	  whl=$$(ls "$(LLAMA_WHEELS)"/llama_cpp_python-$(LLAMA_VERSION)-*.whl 2>/dev/null | head -n1); \
	  [ -n "$$whl" ] || { echo "policy-qa: llama-cpp-python did not build" >&2; exit 1; }; \
	fi; \
	echo "policy-qa: installing $$whl" >&2; \
	$(BIN)/pip install --quiet --no-cache-dir --force-reinstall --no-deps "$$whl"
	@rm -f $(VENV)/.llama-* $(VENV)/.base-* $(VENV)/.test-*
	touch $@

# The llm extra brings the answerability check (README "Refusal"); where llama-cpp-python
# cannot build, the chat still runs, refusing on evidence scores alone. The worker's --info
# prints the build's CPU features, and fails on a build with the AMX path.
$(BASE): pyproject.toml constraints.txt | $(VENV)/bin/python
	@if $(MAKE) --no-print-directory llama LLAMA_BUILD=$(LLAMA_BUILD); then \
	  $(PIP_INSTALL) -e '.[llm]' && $(BIN)/python -m policy_qa.worker --info; \
	else \
	  echo "policy-qa: no llama-cpp-python; the chat runs without the answerability check" >&2; \
	  $(PIP_INSTALL) -e .; \
	fi
	touch $@

$(LIGHT): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP_INSTALL) -e .
	touch $@

$(TEST): pyproject.toml constraints.txt $(LLAMA) | $(VENV)/bin/python
	$(PIP_INSTALL) -e '.[test,llm]'
	$(BIN)/python -m policy_qa.worker --info
	touch $@ $(BASE)

# Browser tests drive Debian's Chromium; Playwright's own browser download cannot work here.
# fonts-noto-cjk: without a CJK font the screenshots of Korean answers show empty boxes.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=ko 2>/dev/null | grep -q .; } || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

lint: $(TEST)
	$(BIN)/ruff check src tests benchmarks research && $(BIN)/ruff format --check src tests benchmarks research && $(BIN)/mypy src benchmarks research

# Every table issue 23 asks for, each benchmark in its quick mode (minutes each, not hours):
# indexing against the plain LangChain pipeline in the same run, many users at once, and scale.
# The full runs and their tables: docs/evaluation.md.
bench: $(TEST)
	$(BIN)/python benchmarks/bench_indexing.py --quick
	$(BIN)/python benchmarks/bench_concurrency.py --quick
	$(BIN)/python benchmarks/scale.py --quick

clean:
	rm -rf $(VENV) .policy-qa test-artifacts
