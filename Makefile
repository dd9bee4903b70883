# Everyday commands. Every target says what it is doing and is safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# pip is the last thing venv installs: its absence means a set-up that was interrupted.
VENV_PIP := $(VENV)/bin/pip
PIP_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
DEMO_PASSWORD ?= demo-portal-2026
PYTEST_ARGS ?=

.PHONY: help venv deps run test lint bench chromium fuzz

help:
	@echo "make run    - install what is missing, load the demo data, serve http://127.0.0.1:8000"
	@echo "make test   - install what is missing (Chromium too), run the tests (PYTEST_ARGS=... to narrow)"
	@echo "make lint   - ruff check, ruff format --check and the layer contracts (import-linter)"
	@echo "make bench  - run the benchmarks (ingest, access decision + audit, FHIR API)"
	@echo "make fuzz   - compare every channel with the access model on random sequences for FUZZ_SECONDS (600)"

$(VENV_PIP):
	@echo "==> Creating virtualenv in $(VENV)"
	python3 -m venv --clear $(VENV)

$(PIP_STAMP): requirements.txt | $(VENV_PIP)
	@echo "==> Installing Python packages from requirements.txt into $(VENV)"
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

# npm ci wipes node_modules (stamp included), so the stamp is written afterwards.
$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@if [ -f package-lock.json ]; then \
		echo "==> Installing front-end packages exactly as locked (npm ci)"; \
		npm ci --no-audit --no-fund; \
	else \
		echo "==> Installing front-end packages (npm install)"; \
		npm install --no-audit --no-fund; \
	fi
	@touch $@

venv: $(VENV_PIP)
	@echo "==> Virtualenv ready in $(VENV)"

deps: $(PIP_STAMP) $(NODE_STAMP)
	@echo "==> Python and front-end dependencies are up to date"

run: export DEBUG := true
run: export DEMO_PASSWORD := $(DEMO_PASSWORD)
run: export AUDIT_SEAL_IN_PROCESS := true
run: deps
	@echo "==> Running with DEBUG=true, SQLite unless DATABASE_URL is set, tasks in-process, email to this console"
	@echo "==> Applying database migrations"
	$(PY) manage.py migrate
	@echo "==> Loading the demo network and patients (python manage.py seed_demo)"
	$(PY) manage.py seed_demo
	@echo "==> Demo users, all with the password: $(DEMO_PASSWORD)"
	@echo "      patient@example.com    a patient with a linked record"
	@echo "      patient2@example.com   a second patient"
	@echo "      gp@example.com         records staff at the GP practice"
	@echo "      hospital@example.com   records staff at the hospital trust"
	@echo "      ig@example.com         information governance officer"
	@echo "    Staff accounts need a two-factor code: .venv/bin/python manage.py demo_totp prints it"
	@echo "==> Serving the portal on http://127.0.0.1:8000 (Ctrl+C to stop)"
	$(PY) manage.py runserver 127.0.0.1:8000

chromium:
	@if [ -x /usr/bin/chromium ]; then \
		echo "==> Chromium found at /usr/bin/chromium"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "==> Installing Chromium from Debian for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "==> /usr/bin/chromium is missing and I cannot install it (needs root and apt-get)."; \
		echo "    Install it with: sudo apt-get install -y chromium. The browser tests will be skipped."; \
	fi

# pytest exits 5 when it collects nothing (say, PYTEST_ARGS matched no test); that is not a failure.
test: deps chromium
	@echo "==> Running the tests: python -m pytest $(PYTEST_ARGS)"
	@status=0; $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "==> No tests were collected; nothing to fail"; exit 0; fi; \
	exit $$status

lint: deps
	@echo "==> ruff check"
	$(VENV)/bin/ruff check .
	@echo "==> ruff format --check"
	$(VENV)/bin/ruff format --check .
	@echo "==> import-linter: the layer contracts in pyproject.toml"
	$(VENV)/bin/lint-imports

bench: deps
	@echo "==> Running the ingest benchmark (bench/ingest.py)"
	$(PY) bench/ingest.py
	@echo "==> Running the access decision + audit benchmark (bench/access.py)"
	$(PY) bench/access.py
	@echo "==> Running the FHIR API benchmark under gunicorn (bench/api.py)"
	$(PY) bench/api.py
	@echo "==> Running the accuracy checks benchmark (bench/checks.py)"
	$(PY) bench/checks.py
	@echo "==> Running the audit append benchmark on PostgreSQL (bench/audit.py)"
	$(PY) bench/audit.py
	$(PY) bench/faults.py

# The model-based access test (tests/test_model_based.py) under its "fuzz" profile: random
# sequences, the channels compared with the model after every step, until the time is up
# (it stops between sequences; a failure found is shrunk and reported, however long that takes).
FUZZ_SECONDS ?= 600
fuzz: $(PIP_STAMP)
	@echo "==> Fuzzing the access rules for $(FUZZ_SECONDS) s: random sequences of ingests, re-filings, sharing choices,"
	@echo "    break-glass, withholding, tokens, share links and time; after each step 25 reads across every channel"
	@echo "    compared with the model (MODEL_CHECKS_PER_STEP=all for every read of every channel)"
	HYPOTHESIS_PROFILE=fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest tests/test_model_based.py -q -p no:cacheprovider --show-capture=no $(PYTEST_ARGS)
