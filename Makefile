# Two commands on a fresh clone: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv with the system Python (3.11+) and install the project into it first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint typecheck pytest report testbed bench bench-hosts bench-concentrated bench-pipeline dist clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: start the loopback testbed, survey its replica of the 2019 population,
## write the tables (and report) under results/demo-isc-2019, print the headline numbers.
demo: $(STAMP)
	$(BIN)/starttls-survey demo

## Lint, check the layers' imports, type-check and run every test (the notebooks and the
## integration tests against the testbed included).
test: lint typecheck pytest

## The fast loop: unit tests only, no testbed, no real-time waits, on every core (under a
## minute).
test-fast: $(STAMP)
	$(BIN)/ruff check research tests benchmarks tools
	$(BIN)/pytest -q -m "not testbed and not slow" -n auto

lint: $(STAMP)
	$(BIN)/ruff check research tests benchmarks tools
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## Benchmarks (not pass/fail): sessions per host, wall time and peak memory of each engine,
## sslyze and testssl.sh on the isc-2019 testbed at 50 ms round trips, then 100 vs 1,000
## generated hosts. Takes about a quarter of an hour; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## The per-host benchmark: five hosts of five providers at 50 ms, our survey CLI beside sslyze's
## (a couple of minutes); writes benchmarks/hosts.json, see benchmarks/README.md.
bench-hosts: $(STAMP)
	$(BIN)/python benchmarks/run.py --hosts --json benchmarks/hosts.json

## The politeness benchmark: a generated list of 10,000 domains on about 1,000 addresses
## (Zipf-sized providers, shared pools): DNS, the survey, and the sslyze path beside it on its
## first 500 domains. About an hour; see benchmarks/README.md.
bench-concentrated: $(STAMP)
	$(BIN)/python benchmarks/run.py --no-isc --scale '' --concentrated 10000,1000 \
	    --sslyze-slice 500 --rtt-ms 20 --json benchmarks/concentrated.json

## The phased survey against the stream on 1,000 and 10,000 generated domains (~30 min).
## BEFORE: a worktree of the phased commit with its own venv
## (git worktree add ../wt-before fd0254f && make -C ../wt-before install).
BEFORE ?= ../wt-before
bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py --before $(BEFORE) --sizes 1000,10000 \
	    --json benchmarks/pipeline.json

## Run the testbed in the foreground until Ctrl-C (prints how to scan it).
testbed: $(STAMP)
	$(BIN)/starttls-survey testbed up

## The wheel and the sdist a user installs with pip (dist/); python -m build makes the sdist,
## then the wheel from the sdist, so no stale build/ of the clone gets into the wheel.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) results reports dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
