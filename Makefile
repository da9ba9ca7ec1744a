# torrio developer entry points. Works on a fresh machine with nothing but python3 (>= 3.11).
#   make test    set up .venv (first run only) and run every test, interop included
#   make demo    a real swarm on loopback with a progress display
#   make type    mypy --strict over every package
#   make lint    ruff check + ruff format --check
#   make bench   benchmarks against reference implementations, printing ratios
#   make tox     per-package isolation envs (each package installed alone)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PKG_PYPROJECTS := $(sort $(wildcard packages/*/pyproject.toml))
PKG_DIRS := $(patsubst %/pyproject.toml,%,$(PKG_PYPROJECTS))
SRC_DIRS := $(wildcard packages/*/src)
STAMP  := $(VENV)/.torrio-installed
PYTEST_ARGS ?=

.PHONY: all setup system-deps test test-fast interop type lint format bench tox demo clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall only when a pyproject changed (editable installs pick up source edits by themselves).
$(STAMP): $(BIN)/python pyproject.toml $(PKG_PYPROJECTS) Makefile
	$(BIN)/python -m pip install -q --group dev
	$(BIN)/python -m pip install -q $(foreach d,$(PKG_DIRS),-e $(d))
	@touch $@

setup: $(STAMP)

# Reference servers some tests and benchmarks run (Debian packages). Tests skip with a reason when
# these are missing; CI installs them (as root) so nothing is skipped there.
SYSTEM_DEPS := redis-server opentracker mktorrent aria2
system-deps:
	@missing=""; for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system deps present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing (tests that need them will skip):$$missing"; fi

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) packages tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not interop and not slow" $(PYTEST_ARGS) packages tests

interop: $(STAMP)
	$(BIN)/python -m pytest -q -m interop $(PYTEST_ARGS) tests/interop

type: $(STAMP)
	MYPYPATH=$(subst $(eval) ,:,$(SRC_DIRS)) $(BIN)/python -m mypy $(foreach d,$(SRC_DIRS),$(d)/torrio)

lint: $(STAMP)
	$(BIN)/ruff check packages tests benchmarks
	$(BIN)/ruff format --check packages tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix packages tests benchmarks
	$(BIN)/ruff format packages tests benchmarks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

tox: $(STAMP)
	$(BIN)/tox run-parallel -r -p 2  # -r: deps are local folders, which tox would not reinstall

demo: $(STAMP)
	$(BIN)/python -m torrio.client.demo

clean:
	rm -rf $(VENV) .tox .mypy_cache .ruff_cache .hypothesis
