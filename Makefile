# agentwatch: every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SRC    := sdk detectors alerts collector dashboards
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test check bench clean tools

# Debian packages some tests and benchmarks drive: Chromium (the status page test) and wrk (a
# C load generator, so senders take little of the CPU the service needs). Installed when
# missing, which needs root (as on CI).
tools:
	@command -v chromium >/dev/null && command -v wrk >/dev/null || { \
		echo "installing chromium and wrk from Debian's packages"; \
		apt-get update -qq && apt-get install -y -qq chromium wrk >/dev/null; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The editable install builds nothing; $(NATIVE) compiles the detectors in place.
$(STAMP): pyproject.toml setup.py | $(BIN)/python
	AGENTWATCH_PURE_PYTHON=1 $(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The detectors' per-event modules, compiled by mypyc (setup.py) beside their sources, and
# again when one changes: about three times the events per second. AGENTWATCH_PURE_PYTHON=1
# removes them instead (everything runs interpreted, the same, slower).
NATIVE := build/.native
ifeq ($(filter-out 0,$(AGENTWATCH_PURE_PYTHON)),)
$(NATIVE): $(STAMP) setup.py $(wildcard detectors/*.py)
	@echo "compiling the detectors with mypyc (about a minute)"
	$(BIN)/python setup.py -q build_ext --inplace
	@touch detectors/*.so  # current now, rebuilt or not (tests/conftest.py compares the times)
	@mkdir -p build && touch $(NATIVE)
else
.PHONY: $(NATIVE)
$(NATIVE): $(STAMP)
	rm -f detectors/*.so $(NATIVE)
endif

demo: $(NATIVE)
	$(BIN)/agentwatch demo

# mypy cannot follow setuptools' editable finder, so it reads the package through a tree of
# symlinks laid out as the installed import names (agentwatch/sdk -> sdk, ...).
.mypy_src/agentwatch:
	mkdir -p .mypy_src/agentwatch
	for d in $(SRC); do ln -sfn ../../$$d .mypy_src/agentwatch/$$d; done

check: $(STAMP) .mypy_src/agentwatch
	$(BIN)/ruff check $(SRC) tests setup.py
	$(BIN)/ruff format --check $(SRC) tests setup.py
	cd .mypy_src && ../$(BIN)/mypy --config-file ../pyproject.toml $(foreach d,$(SRC),-p agentwatch.$(d))

test: check tools $(NATIVE)
	$(BIN)/python -m pytest tests

bench: $(NATIVE) tools
	$(BIN)/python -m pytest tests/bench -p no:cacheprovider -s

clean:
	rm -rf $(VENV) .mypy_src .pytest_cache .mypy_cache build dist *.egg-info detectors/*.so
