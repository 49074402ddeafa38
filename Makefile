# The two commands a new user needs: `make run` and `make test`. Both create .venv if it is
# missing and install the pinned requirements first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CUSTOMERS ?= 20000

export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: run test install browser lint format bench airflow-ui airflow-up airflow-down clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## Generate a demo CRM (20,000 customers), run the whole pipeline through Airflow.
run: $(STAMP)
	$(BIN)/crm demo --customers $(CUSTOMERS)

## Headless Chromium for the report test (installed from Debian when missing; needs root).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## The whole test suite: unit, DAG integrity, and the real Airflow + dbt + DuckDB +
## PostgreSQL runs (PostgreSQL on 127.0.0.1:5432, database `test`, must be running).
test: $(STAMP) browser
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks print figures; they are not tests. BENCH_CUSTOMERS sets the size.
bench: $(STAMP)
	$(BIN)/python bench/bench_generate.py --customers $${BENCH_CUSTOMERS:-1000000}
	$(BIN)/python bench/bench_pipeline.py --customers $${BENCH_CUSTOMERS:-1000000}

## The Airflow UI and scheduler for the embedded default (http://localhost:8080).
airflow-ui: $(STAMP)
	$(BIN)/crm airflow standalone

## Airflow as a deployment: PostgreSQL metadata database, Celery workers on Redis, each
## process separate (docs/deployment.md). WORKERS sets how many workers.
airflow-up: $(STAMP)
	$(BIN)/crm deployment up --workers $${WORKERS:-2}

airflow-down: $(STAMP)
	$(BIN)/crm deployment down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dbt_project/target dbt_project/logs
