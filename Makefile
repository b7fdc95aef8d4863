# The README's two commands: `make demo` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test install browser fonts lint bench migrate check clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.installed

## Start the product with demo data (SQLite files under var/) on BPO_HOST:BPO_PORT.
demo: install fonts
	$(VENV)/bin/bpoctl demo

## Run every test (SQLite; PostgreSQL too when BPO_TEST_POSTGRES_URL is set), in TEST_WORKERS
## processes (pytest-xdist; one per CPU by default; each makes its own databases).
TEST_WORKERS ?= auto
test: install browser fonts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS)

# Debian's Chromium for the Playwright tests (no browser download: Playwright drives /usr/bin/chromium).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; \
	fi

# A CJK font for the ja and zh invoice PDFs (billing/invoices/pdf.py; without it they are rendered in English).
fonts:
	@if [ ! -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; fi; \
	fi

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

migrate: install
	$(VENV)/bin/bpoctl db upgrade

check: migrate
	$(VENV)/bin/bpoctl db check

## Every benchmark, each printing its figures (and the ratio to the raw insert rate of the same run).
bench: install
	$(VENV)/bin/bpoctl bench ingest
	$(VENV)/bin/bpoctl bench invoices
	$(VENV)/bin/bpoctl bench sla
	$(VENV)/bin/bpoctl bench audit-export
	$(VENV)/bin/bpoctl bench usage-csv

clean:
	rm -rf $(VENV) .tools test-output
