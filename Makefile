# Accelerated AI Workshop. `make run` runs the labs; `make test` runs the tests. Both install what they need.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PROFILE ?= auto
LABS  ?=
HOST  ?= 127.0.0.1
PORT  ?= 8888
LAB_ROOT ?= $(CURDIR)
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
STAMP := $(VENV)/.workshop-lock-sha256

.PHONY: help setup lock run test test-full test-unit test-notebooks lint lab serve doctor prefetch verify strip export student report slides clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): requirements/lock.txt requirements/nodeps.txt pyproject.toml tools/setup_env.py
	python3 tools/setup_env.py --venv $(VENV)

setup: ## create .venv from requirements/lock.txt (+ espeak-ng, sox, libsndfile1, chromium when root); idempotent
	python3 tools/setup_env.py --venv $(VENV)

lock: ## re-resolve requirements/base.in into requirements/lock.txt
	python3 tools/setup_env.py --relock

run: $(STAMP) ## execute every lab in the profile this machine allows; summary in build/summary.md
	$(PY) -m workshop_utils run --profile $(PROFILE) $(if $(LABS),--labs $(LABS))

test: $(STAMP) ## lint and types beside the tests: unit tests, every notebook in the smoke profile (two at a time)
	@mkdir -p build; export WORKSHOP_TEST_LANES=$${WORKSHOP_TEST_LANES:-$$($(PY) -c 'from tests.smoke_lanes import lane_count; print(lane_count())')}; \
	$(MAKE) --no-print-directory lint > build/lint.log 2>&1 & lint=$$!; \
	$(PY) -m pytest -q --durations=15 tests; tests=$$?; \
	wait $$lint; linted=$$?; echo "--- make lint (ran beside the tests) ---"; cat build/lint.log; \
	if [ $$linted -ne 0 ]; then echo "make test: make lint failed (above)"; exit 1; fi; exit $$tests

test-full: lint ## make test with the long load test (16 clients x 1000 requests per protocol instead of x 100)
	WORKSHOP_LOAD_REQUESTS=1000 $(PY) -m pytest -q tests

test-unit: lint ## lint and types, then unit tests only (fast: no notebooks, no load test)
	$(PY) -m pytest -q tests -m "not notebook and not load"

lint: $(STAMP) ## ruff (pyflakes, import order, complexity) and mypy, configured in pyproject.toml
	$(VENV)/bin/ruff check workshop_utils tests tools
	$(VENV)/bin/mypy

test-notebooks: $(STAMP) ## notebooks only, smoke profile
	$(PY) -m pytest -q tests -m notebook

lab: $(STAMP) ## JupyterLab on $(HOST):$(PORT) with a token (remote: SSH tunnel, see README); LAB_ROOT= to serve another folder
	@if [ "$$(id -u)" = 0 ]; then echo "[lab] running as root (as in NGC containers and most GPU cloud images): passing --allow-root"; fi
	JUPYTER_PATH=$(VENV)/share/jupyter $(VENV)/bin/jupyter lab --ip=$(HOST) --port=$(PORT) --no-browser \
		$$( [ "$$(id -u)" = 0 ] && echo --allow-root ) --ServerApp.root_dir=$(LAB_ROOT) \
		--IdentityProvider.token=$${JUPYTER_TOKEN:-$$(python3 -c 'import secrets; print(secrets.token_hex(16))')}

serve: $(STAMP) ## serve the nuclei model with Triton on 127.0.0.1 (HTTP 8000, gRPC 8001, metrics 8002) until Ctrl-C
	$(PY) -m workshop_utils serve --profile $(PROFILE) --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

doctor: $(STAMP) ## is this machine ready? which profile will each lab use?
	$(PY) -m workshop_utils doctor

prefetch: $(STAMP) ## download and verify data into $$WORKSHOP_DATA_DIR (PROFILE=cpu or gpu: only what it uses; the night before)
	$(PY) -m workshop_utils prefetch $(if $(filter smoke cpu gpu,$(PROFILE)),--profile $(PROFILE))

verify: $(STAMP) ## check manifests and re-hash cached data
	$(PY) -m workshop_utils verify

strip: $(STAMP) ## remove outputs and execution counts from notebooks/
	$(PY) -m workshop_utils.instructor.notebooks notebooks/*.ipynb

export: $(STAMP) ## copy the notebooks' #| export cells into workshop_utils/lessons/ (run after editing one)
	$(PY) -m workshop_utils.instructor.export

student: $(STAMP) ## attendee copies of the labs in student/ (solutions replaced by stubs)
	$(PY) -m workshop_utils student

report: $(STAMP) ## build/report.html from build/results/*.json (wall time vs budget, metrics, pass/fail)
	$(PY) -m workshop_utils report

slides: $(STAMP) ## offline slide decks (reveal.js bundled) in build/slides/
	$(PY) -m workshop_utils slides

clean: ## remove build outputs (keeps .venv and the data cache)
	rm -rf build student .pytest_cache
