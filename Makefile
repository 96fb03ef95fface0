# The two commands of the README: `make demo` (bring everything up and show the switch
# working) and `make test` (every test, on a real Kafka broker). Both install what they
# need into .venv first; the Kafka jars are fetched from Maven Central into ~/.cache.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint install clean reliability soak

ASYNCAPI := tools/asyncapi

$(BIN)/.installed: pyproject.toml $(ASYNCAPI)/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# The reference AsyncAPI parser, which the tests use to validate schemas/asyncapi.json.
	npm ci --prefix $(ASYNCAPI) --ignore-scripts --no-audit --no-fund --loglevel=error
	# The system's Chromium, which the web console's browser tests drive through Playwright
	# (Playwright's own browser download is not used).
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/switch demo

lint: install
	$(BIN)/ruff check switch services tests bench
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

# The long reliability runs (not part of `make test`): the broker stopped cleanly and
# killed with -9 while 5,000 requests flow, a storm of 100,000 hostile inputs, and a full
# disk both ways (a real tmpfs and SQLite's page quota) and a slow disk. Prints
# the figures at the end (requests, replies, missing, doubled, restarts, recovery, rate).
reliability: install
	RELIABILITY=long $(BIN)/pytest -p no:logging -o timeout=3600 -s \
		tests/flow/test_broker_restart.py tests/flow/test_fuzz_storm.py tests/flow/test_store_faults.py

# Soak: the switch (`switch up --instances 1`) at a steady mixed load for DURATION seconds
# (default an hour); prints each process's RSS slope after warm-up, p99 per minute and its
# drift, and requests sent/replied/missing/doubled (bench/soak.py; SOAK_ARGS for more,
# e.g. SOAK_ARGS="--mode run --rate 100").
DURATION ?= 3600
RATE ?= 60
soak: install
	$(BIN)/python bench/soak.py --duration $(DURATION) --rate $(RATE) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(ASYNCAPI)/node_modules
