# invariant — every task a newcomer needs. Only python3 (3.11+) and make are required.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run run-services demo bank test lint typecheck imports contracts-check pytest docs bench bench-telemetry clean

# Two distributions, both editable: invariant with every extra, and shop (apps/shop).
DEV_INSTALL := -e '.[dev,all,docs]' -e ./apps/shop

$(STAMP): pyproject.toml apps/shop/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt $(DEV_INSTALL)
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,all,docs,bench]' -e ./apps/shop
	touch $@

## make run: the main job: shop on SQLite at http://127.0.0.1:8000 (no server needed)
run: $(STAMP)
	$(BIN)/python -m shop

## make run-services: shop as services: every context its own process on PostgreSQL
## (INVARIANT_POSTGRES_DSN, default the local server) and NATS (INVARIANT_BROKER_URL), the
## gateway at http://127.0.0.1:8000; Ctrl+C stops them all
run-services: $(STAMP)
	$(BIN)/python -m shop services

## make demo: a scripted walkthrough of shop over HTTP (starts its own shop in var/demo);
## ends with PASS, or FAIL and exit status 1 when an outcome is not the expected one.
## make demo DEMO_URL=http://127.0.0.1:8000 walks through a shop already running there
## (make run's or make run-services'; SHOP_DATA names its data, default var/shop)
DEMO_URL ?=
demo: $(STAMP)
	$(BIN)/python -m shop demo $(if $(DEMO_URL),--url $(DEMO_URL))

## make bank: the seed's bank-account scenarios (event store, snapshots, temporal reads)
bank: $(STAMP)
	$(BIN)/python -m examples.bank

## make test: everything — lint, types, import boundaries, tests, the documentation site
test: lint typecheck imports contracts-check pytest docs

lint: $(STAMP)
	$(BIN)/ruff check

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

## make contracts-check: the example's contracts vs its migrations (on a fresh SQLite
## database) and its published JSON Schemas; fails naming each difference
CONTRACTS_DB := var/contracts-check.db
contracts-check: $(STAMP)
	mkdir -p var && rm -f $(CONTRACTS_DB) $(CONTRACTS_DB)-wal $(CONTRACTS_DB)-shm
	$(BIN)/invariant contracts upgrade --create --migrations examples/users/migrations \
		--database sqlite:///$(CONTRACTS_DB)
	$(BIN)/invariant contracts check --contracts examples.users.contracts \
		--database sqlite:///$(CONTRACTS_DB) --migrations examples/users/migrations \
		--schemas examples/users/schemas

## the suite runs on two workers (every test uses its own schema, files and ports); set
## PYTEST_WORKERS=0 for one process. The tests that start shop's whole set of services run
## after the rest, on their own: the set holds about 50 of PostgreSQL's connections.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not services_mode"
	$(BIN)/python -m pytest -m services_mode

## make docs: the documentation site (mkdocs.yml, docs/) into var/site, offline; a warning
## (a broken link or anchor, a docstring mkdocstrings cannot read) fails it
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## make bench: benchmarks against raw drivers and eventsourcing, and W6 (shop end to end)
## (writes benchmarks/results/latest.json)
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --repeat 3
	$(BIN)/python -m benchmarks.readme

## make bench-telemetry: W1 without the telemetry hooks, with tracing off and on, side by side
bench-telemetry: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --telemetry --repeat 3

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
