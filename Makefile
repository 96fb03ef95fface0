# The two commands of the README: `make demo` (bring everything up and show the switch
# working) and `make test` (every test, on a real Kafka broker). Both install what they
# need into .venv first; the Kafka jars are fetched from Maven Central into ~/.cache.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/switch demo

lint: install
	$(BIN)/ruff check switch tests bench
	$(BIN)/mypy switch

test: install lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
