# Every target works on a fresh clone: `make run` and `make test` install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck fmt schemas diagrams image bench llm clean

# The same install script as the image's build stage (Dockerfile), with the dev extras.
$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) scripts/install.sh --venv $(VENV) --extras dev --editable
	touch $(STAMP)

install: $(STAMP)

## run: start the API and worker on the embedded Postgres (http://127.0.0.1:8000/docs)
run: $(STAMP)
	$(BIN)/crew serve

## test: lint, type-check, contract check and the whole test suite (what CI runs)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	scripts/diagrams --check
	scripts/ensure-chromium
	scripts/ensure-promtool --bin $(BIN)
	scripts/local-llm --venv $(VENV) --quiet
	$(BIN)/pytest -n 4 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: $(STAMP)
	$(BIN)/crew schema export

## diagrams: regenerate conductor*.mmd from the graph, then render docs/diagrams/src/*.mmd to SVG
diagrams: $(STAMP)
	$(BIN)/crew diagram export
	scripts/diagrams

## image: the container image (needs a Docker engine; `--target offline` adds the AWS provider)
image:
	docker build -t infra-crew:local .

## llm: the local model for the LLM planner's real-model tests and `crew llm serve` (~660 MB)
llm: $(STAMP)
	scripts/local-llm --venv $(VENV)

## bench: the Conductor benchmark table (see bench/README.md)
bench: $(STAMP)
	$(BIN)/python -m bench.conductor

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache docs/diagrams/node_modules
