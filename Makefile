# microseg: `make demo` runs the main job on built-in demo data; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CUSTOMERS ?= 10000

.PHONY: demo test test-fast lint bench install install-dev clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,spark,xlsx]"

demo: install
	$(BIN)/microseg demo microseg-demo --customers $(CUSTOMERS) --force

test: install-dev
	$(BIN)/pytest -n 2 --dist loadfile

# the quick loop: slow and Spark suites left out, one test module per worker on two workers
# (a module's fixtures are built once)
test-fast: install-dev
	$(BIN)/pytest -m "not slow and not spark" -n 2 --dist loadfile

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

bench: install-dev
	$(BIN)/pip install --quiet lifetimes==0.11.3
	$(BIN)/python benchmarks/import_speed.py
	$(BIN)/python benchmarks/clv_speed.py
	$(BIN)/python benchmarks/segment_speed.py
	$(BIN)/python benchmarks/backfill_speed.py
	$(BIN)/python benchmarks/cluster_sample.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) microseg-demo .pytest_cache build *.egg-info

docs: install
	$(BIN)/python -c "from microseg.config import settings_markdown as s; open('docs/configuration.md', 'w').write(s())"
	$(BIN)/python -c "from microseg.schema import contracts_markdown as s; open('docs/data-model.md', 'w').write(s())"
