# DigitFlow — every target explains itself: run `make help`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MNIST_DIR ?= ../shared/data/mnist

.DEFAULT_GOAL := help
.PHONY: help setup run recognize migrate api worker train test test-env test-containers lint mutation bench-latency bench-bulk chaos bench-chaos bench-fastpath bench-mixed clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed-%: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[$(subst +,$(comma),$*)]"
	@touch $@

comma := ,

setup: $(VENV)/.installed-api+worker ## Create .venv with what the API and worker need (no TensorFlow)

HOST ?= 127.0.0.1
PORT ?= 8000

run: setup ## Set up and run the platform on embedded defaults (SQLite, embedded Redis, local storage): make run [PORT=8000] [HOST=127.0.0.1]
	$(VENV)/bin/digitflow run --host $(HOST) --port $(PORT)

recognize: setup ## Recognise image files: make recognize FILES="a.png b.jpg"
	$(VENV)/bin/digitflow recognize $(FILES)

migrate: setup ## Apply database migrations (alembic upgrade head) to DATABASE_URL or the SQLite default
	$(VENV)/bin/alembic upgrade head

train: $(VENV)/.installed-training ## Train the default model on MNIST_DIR, write models/default
	$(PY) -m training.pipeline --data $(MNIST_DIR) --out models/default

test-env: $(VENV)/.installed-api+worker+training+dev ## Install what the tests need: Python deps, Redis, Chromium, Azurite
	scripts/setup-test-env.sh

test: test-env ## Set up and run the whole test suite against real Postgres, Redis, Azurite, Chromium and Celery, then the containers
	$(VENV)/bin/pytest
	$(MAKE) test-containers

test-containers: $(VENV)/.installed-api+worker+training+dev ## Build the images, run the compose stack, a 1,000-document job and a canvas drawing through it (installs/starts Docker as root)
	scripts/test-containers.sh

lint: $(VENV)/.installed-dev ## Static checks (ruff)
	$(VENV)/bin/ruff check .

MUTATE ?= recognition api-jobs worker digitflow
mutation: test-env ## Mutation testing (mutmut), package by package against its fast tests, in var/mutation/: make mutation [MUTATE="recognition api-jobs"]; slow
	for package in $(MUTATE); do \
	  DIGITFLOW_MNIST_DIR=$(abspath $(MNIST_DIR)) nice -n 19 $(PY) -m devtools.mutation run $$package || exit 1; \
	done
	$(PY) -m devtools.mutation report

bench-latency: $(VENV)/.installed-api+worker+training+dev ## Benchmark the synchronous fast path, write docs/benchmarks.md
	$(PY) benchmarks/latency.py

chaos: test-env ## Fault tests only: six faults during a real job on Postgres + Redis (also part of make test)
	$(VENV)/bin/pytest -m chaos tests/reliability

bench-chaos: test-env ## The six faults on a 10,000-document job, write docs/reliability.md
	$(PY) benchmarks/chaos.py

bench-fastpath: $(VENV)/.installed-api+worker+training+dev ## wrk against /predict-drawing per server (uvicorn, gunicorn, granian), then CPU a request by stage and thread; write docs/benchmarks.md
	$(PY) benchmarks/fastpath_external.py
	$(PY) benchmarks/fastpath_cpu.py

bench-mixed: $(VENV)/.installed-api+worker+training+dev ## Ten minutes of canvas requests and bulk jobs on `digitflow run`, write docs/reliability.md
	$(PY) benchmarks/mixed_load.py --minutes 10

bench-bulk: test-env ## Benchmark 10,000 documents through Postgres + Redis + a Celery worker
	$(PY) benchmarks/bulk_throughput.py

clean: ## Remove the virtualenv, caches and local runtime data (var/)
	rm -rf $(VENV) .pytest_cache var .cache
