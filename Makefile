# TrapLens: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-nodeps.txt | cksum | cut -d' ' -f1)
export TRAPLENS_HOME ?= $(CURDIR)/workspace

.PHONY: setup demo demo-data demo-runs serve test test-fast bench gpu-check browser screenshots clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@rm -f $(VENV)/.installed-*; touch $@

# Debian's Chromium for the Playwright browser tests (no browser download at run time).
browser:
	@bash scripts/install-chromium.sh

demo: setup
	$(BIN)/python -m scripts.demo

test: setup browser
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser"

# Refresh the README's screenshots (the browser tests write them to a temp folder otherwise).
screenshots: setup browser
	TRAPLENS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser

# make bench: every bench at the default scale (1 M images, under 10 minutes);
# make bench SCALE=full: every target at its stated size, 7.2 M images (~20 GB disk, most RAM)
SCALE ?= default
bench: setup
	$(BIN)/python -m bench --scale $(SCALE) $(BENCH)

gpu-check: setup
	bash scripts/gpu-check.sh

clean:
	rm -rf $(TRAPLENS_HOME)
